// Package imap is the IMAP4rev1 server of mailsrv (RFC 3501), with the
// extensions listed in capabilities: LITERAL+ (RFC 7888), SASL-IR
// (RFC 4959), ID (RFC 2971), ENABLE (RFC 5161), IDLE (RFC 2177),
// NAMESPACE (RFC 2342), UNSELECT (RFC 3691), UIDPLUS (RFC 4315), MOVE
// (RFC 6851), ESEARCH (RFC 4731), SEARCHRES (RFC 5182), SPECIAL-USE
// (RFC 6154), CHILDREN (RFC 3348), LIST-EXTENDED (RFC 5258), LIST-STATUS
// (RFC 5819), APPENDLIMIT (RFC 7889), STATUS=SIZE (RFC 8438), QUOTA
// (RFC 9208, STORAGE only), SORT and THREAD (ORDEREDSUBJECT, REFERENCES;
// RFC 5256) and BINARY (RFC 3516), STARTTLS (RFC 3501 section 6.2.1) and
// implicit TLS (RFC 8314), AUTHENTICATE with the SASL mechanisms of
// package sasl (SCRAM-SHA-256, PLAIN, LOGIN) and the response codes of
// RFC 5530.
//
// # Logins
//
// LOGIN and AUTHENTICATE go through a sasl.Server per session (which knows
// whether the connection is encrypted and where the peer is, and so which
// mechanisms may be offered) and the shared auth.Authenticator (throttling,
// hash upgrades, the auth log line); loggedIn turns sasl.Classify's
// outcome into the tagged response. STARTTLS (cmd_starttls.go) answers OK,
// then swaps the session's connection, reader and writer for TLS ones: the
// old reader, with whatever the client pipelined in the clear, is dropped.
//
// # Layout
//
// Package imap/wire reads commands (lines and literals, under limits) and
// parses their arguments; it writes responses. This package decides what
// they mean: server.go holds what sessions share and the capability list,
// session.go the per-connection loop, dispatch and tagged responses,
// selected.go the view of the selected folder (sequence numbers, \Recent,
// and the untagged EXISTS/EXPUNGE/FETCH that report other processes'
// changes), and one cmd_*.go file per group of commands. Folders and
// messages are package mailstore, which owns everything on disk. FETCH
// and SEARCH read headers through mailstore's header cache, one batch per
// command; hcache.go says which fields each needs.
//
// # Adding a command
//
// Register a handler in the init function of its file: commands["NAME"] =
// handler{fn, states}. A handler parses its arguments with c.p (the
// command name is already read), writes untagged responses with s.w, and
// returns nil (tagged OK), a status (no, bad, ok with a response code), a
// *wire.SyntaxError (BAD) or another error (logged, NO [UNAVAILABLE]).
// finish then sends the mailbox updates and the tagged response. A UID
// variant sets c.uid (add the name to uidCommands). Advertise it in
// capabilities, add a scripted session under testdata/sessions, and test
// it with a client we did not write.
//
// # Not there yet
//
// IMAP4rev2 (RFC 9051), CONDSTORE/QRESYNC (RFC 7162: needs a
// mod-sequence per message kept beside the UID list, bumped under the
// folder lock by whichever process first sees a flag change), UTF8=ACCEPT,
// SCRAM-SHA-256-PLUS (channel binding), and dropping privileges to the
// mailbox owner.
package imap
