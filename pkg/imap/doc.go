// Package imap is the IMAP4rev1 (RFC 3501) and IMAP4rev2 (RFC 9051, after
// ENABLE) server of mailsrv, with the extensions listed in capabilities:
// LITERAL+ (RFC 7888), SASL-IR
// (RFC 4959), ID (RFC 2971), ENABLE (RFC 5161), IDLE (RFC 2177),
// NAMESPACE (RFC 2342), UNSELECT (RFC 3691), UIDPLUS (RFC 4315), MOVE
// (RFC 6851), ESEARCH (RFC 4731), SEARCHRES (RFC 5182), SPECIAL-USE and
// CREATE-SPECIAL-USE (RFC 6154), UTF8=ACCEPT (RFC 6855), CHILDREN (RFC 3348), LIST-EXTENDED (RFC 5258), LIST-STATUS
// (RFC 5819), APPENDLIMIT (RFC 7889), STATUS=SIZE (RFC 8438), QUOTA
// (RFC 9208, STORAGE only), SORT and THREAD (ORDEREDSUBJECT, REFERENCES;
// RFC 5256), BINARY (RFC 3516), CONDSTORE and QRESYNC (RFC 7162),
// STARTTLS (RFC 3501 section 6.2.1) and
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
// command; hcache.go says which fields each needs, and kept.go how the
// ENVELOPE and BODYSTRUCTURE a FETCH sent are kept there, as sent.
//
// # IMAP4rev1 and IMAP4rev2
//
// A session is rev1 until ENABLE IMAP4rev2; rev2.go holds what changes
// then (no \Recent, ESEARCH, OK [CLOSED] and LIST on SELECT, UTF-8
// names) and what UTF8=ACCEPT brings. Mailbox names are stored in
// modified UTF-7 whatever the client speaks: wire.Parser.Mailbox turns a
// client's name into the stored form and wire.Writer.Mailbox back (both
// know the session's mode from their UTF8 field), and LIST matches
// patterns against the names as the client sees them (displayNames).
//
// # Mod-sequences (CONDSTORE, QRESYNC)
//
// condstore.go holds RFC 7162. A session starts tracking mod-sequences
// only when it enables CONDSTORE (ENABLE, SELECT/EXAMINE (CONDSTORE),
// STATUS HIGHESTMODSEQ, FETCH MODSEQ or CHANGEDSINCE, STORE
// UNCHANGEDSINCE, SEARCH MODSEQ) or QRESYNC: then the selected folder has
// a mailstore.ModSeqs, synced after the folder at every look (update), and
// views remember the MODSEQ last reported, so that a change made by any
// process (a rename in the Maildir, pop3d, a session without CONDSTORE)
// reaches the client as FETCH (UID FLAGS MODSEQ). The record itself
// (FOLDER/mailsrv-modseq, see mailstore/modseq.go) is appended to under the
// folder lock by whichever tracking process first sees a difference. A
// session that never enables them reads and writes nothing more, and gets
// the same responses as before but one: [CLOSED] on a reselect, which RFC
// 7162 section 3.2.11 asks of every server that offers QRESYNC. HIGHESTMODSEQ
// is sent on SELECT only to sessions that enabled CONDSTORE (as Dovecot
// does), so a plain SELECT does not pay for it. With QRESYNC, EXPUNGE
// responses become VANISHED (own expunges, MOVE, other processes' during
// any command or IDLE); VANISHED (EARLIER) may name UIDs expunged long ago,
// or never used, when the client's mod-sequence is below the record's
// floor (RFC 7162 section 3.2.5.2 allows reporting too much), except
// below the largest UID whose sequence number the client's seq-match-data
// still has right (at most maxSeqMatch pairs are looked at).
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
// UTF-8 ENVELOPE address names after
// UTF8=ACCEPT (they stay encoded words), NOMODSEQ (a folder whose
// mod-sequence record cannot be written fails a CONDSTORE SELECT instead),
// and SCRAM-SHA-256-PLUS (channel binding). Privileges: imapd runs as the
// mailbox owner (--user) or, serving system accounts one connection per
// process, becomes the owner after the login (BeforeOpen).
package imap
