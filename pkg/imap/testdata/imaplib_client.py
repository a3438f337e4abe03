"""Exercise imapd with Python's imaplib, a client we did not write.

Usage: imaplib_client.py HOST PORT USER PASSWORD
Prints "ok" and exits 0 when every check passed; fails with a traceback
otherwise.
"""
import imaplib
import sys
import time

host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]


def check(cond, what):
    if not cond:
        raise SystemExit("check failed: " + what)


m = imaplib.IMAP4(host, port)
typ, caps = m.capability()
check(typ == "OK" and b"IDLE" in caps[0] and b"AUTH=PLAIN" in caps[0], "capability %r" % caps)
typ, _ = m.noop()
check(typ == "OK", "noop")
try:
    m.login(user, "wrong password")
    raise SystemExit("login with a wrong password succeeded")
except imaplib.IMAP4.error:
    pass
m.authenticate("PLAIN", lambda _: ("\0%s\0%s" % (user, password)).encode())
check(m.state == "AUTH", "authenticate")

typ, data = m.list()
check(typ == "OK" and any(b"\\Sent" in d for d in data), "list %r" % data)
check(m.create("imaplib/sub")[0] == "OK", "create")
check(m.subscribe("imaplib/sub")[0] == "OK", "subscribe")
typ, data = m.lsub()
check(data == [b'() "/" imaplib/sub'], "lsub %r" % data)
check(m.rename("imaplib/sub", "imaplib/renamed")[0] == "OK", "rename")
check(m.unsubscribe("imaplib/sub")[0] == "OK", "unsubscribe")

msg = b"From: py@example.test\r\nSubject: from imaplib\r\n\r\nbody line\r\n"
typ, data = m.append("INBOX", "(\\Flagged)", imaplib.Time2Internaldate(time.time()), msg)
check(typ == "OK" and b"APPENDUID" in data[0], "append %r" % data)

typ, data = m.select("INBOX")
check(typ == "OK" and data == [b"2"], "select %r" % data)
typ, data = m.fetch("1:*", "(UID FLAGS RFC822.SIZE)")
check(typ == "OK" and len(data) == 2, "fetch %r" % data)
typ, data = m.fetch("2", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
check(data[0][1] == b"Subject: from imaplib\r\n\r\n", "fetch header %r" % data)
typ, data = m.fetch("2", "(RFC822)")
check(data[0][1] == msg, "fetch rfc822 %r" % data)
typ, data = m.search(None, "FLAGGED")
check(data == [b"2"], "search flagged %r" % data)
typ, data = m.search(None, '(SUBJECT "imaplib" SEEN)')
check(data == [b"2"], "search subject seen %r" % data)
typ, data = m.uid("SEARCH", "ALL")
uids = data[0].split()
check(len(uids) == 2, "uid search %r" % data)
typ, data = m.store("1", "+FLAGS", "(\\Answered)")
check(typ == "OK" and b"\\Answered" in data[0], "store %r" % data)
typ, data = m.copy("1", "imaplib/renamed")
check(typ == "OK", "copy %r" % data)
typ, data = m.uid("MOVE", uids[1].decode(), "Trash")
check(typ == "OK", "move %r" % data)
typ, data = m.status("imaplib/renamed", "(MESSAGES UIDNEXT)")
check(data == [b"imaplib/renamed (MESSAGES 1 UIDNEXT 2)"], "status %r" % data)
typ, data = m.store("1", "+FLAGS", "(\\Deleted)")
typ, data = m.expunge()
# MOVE's EXPUNGE (message 2) is still queued in imaplib, then ours.
check(typ == "OK" and data == [b"2", b"1"], "expunge %r" % data)
check(m.check()[0] == "OK", "check")
check(m.close()[0] == "OK", "close")
check(m.delete("imaplib/renamed")[0] == "OK", "delete")
typ, data = m.select("Trash", readonly=True)
check(data == [b"1"], "examine trash %r" % data)
check(m.unselect()[0] == "OK", "unselect")
typ, data = m.namespace()
check(data == [b'(("" "/")) NIL NIL'], "namespace %r" % data)
check(m.logout()[0] == "BYE", "logout")
print("ok")
