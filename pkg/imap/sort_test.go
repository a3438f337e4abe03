package imap

import "testing"

func TestBaseSubject(t *testing.T) {
	for in, want := range map[string]string{
		"Re: [list] Fwd: Hello (fwd)":  "hello",
		"RE:  re[2]: hello   world":    "hello world",
		"[fwd: Re: x]":                 "x",
		"[only a blob]":                "[only a blob]",
		"=?utf-8?q?R=C3=A9sum=C3=A9?=": "résumé",
		"":                             "",
	} {
		if got := baseSubject(in); got != want {
			t.Errorf("baseSubject(%q) = %q, want %q", in, got, want)
		}
	}
}
