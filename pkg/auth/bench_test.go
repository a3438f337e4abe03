package auth

import "testing"

// BenchmarkVerify is one argon2id login check after another in one
// process, as imapd --listen or smtpd --listen does them; with
// ReturnMemory the memory given back after each is faulted in again by the
// next.
func BenchmarkVerify(b *testing.B) {
	h, err := Hash("correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	for _, ret := range []bool{false, true} {
		name := "keep"
		if ret {
			name = "return"
		}
		b.Run(name, func(b *testing.B) {
			defer func(old bool) { ReturnMemory = old }(ReturnMemory)
			ReturnMemory = ret
			for b.Loop() {
				if err := Verify(h, "correct horse battery staple"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
