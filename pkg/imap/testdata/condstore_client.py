"""CONDSTORE and QRESYNC across processes, with Python's imaplib (a client
we did not write; it passes the RFC 7162 commands through
_simple_command and parses their untagged responses and response codes).

Usage: condstore_client.py HOST PORT1 PORT2 USER PASSWORD MAILDIR
PORT1 and PORT2 are two imapd processes serving the same root; MAILDIR is
the user's INBOX, which this script also changes directly, as a mail
reader working on the Maildir would. Prints "ok" when every check passed.
"""
import glob
import imaplib
import os
import re
import sys

host, port1, port2, user, password, maildir = sys.argv[1:7]


def check(cond, what):
    if not cond:
        raise SystemExit("check failed: " + what)


def login(port):
    m = imaplib.IMAP4(host, int(port))
    m.login(user, password)
    return m


def cmd(m, *args):
    typ, dat = m._simple_command(*args)
    check(typ == "OK", "%r: %r %r" % (args, typ, dat))
    return dat


def code(m, name):
    """The last value of a response code or untagged response."""
    vals = m.untagged_responses.pop(name, None)
    return vals[-1] if vals else None


def fetches(m):
    """UID -> (flags, modseq) of the untagged FETCH responses."""
    out = {}
    for d in m.untagged_responses.pop("FETCH", []):
        d = d.decode() if isinstance(d, bytes) else d[0].decode()
        uid = re.search(r"UID (\d+)", d)
        mod = re.search(r"MODSEQ \((\d+)\)", d)
        flags = re.search(r"FLAGS \(([^)]*)\)", d)
        out[int(uid.group(1))] = (flags.group(1) if flags else None, int(mod.group(1)) if mod else None)
    return out


def rename_flags(n, flags):
    """Change message n's flags by renaming its file, as a mail reader does."""
    files = sorted(glob.glob(os.path.join(maildir, "cur", "*")) + glob.glob(os.path.join(maildir, "new", "*")))
    path = files[n]
    base = os.path.basename(path).split(":")[0]
    os.rename(path, os.path.join(maildir, "cur", base + ":2," + flags))


# A: process 1, QRESYNC.
a = login(port1)
typ, dat = a._simple_command("ENABLE", "QRESYNC")
check(typ == "OK" and code(a, "ENABLED") == b"QRESYNC", "enable %r" % dat)
typ, dat = a.select("INBOX")
check(typ == "OK" and dat == [b"3"], "select %r" % dat)
validity = int(code(a, "UIDVALIDITY"))
h0 = int(code(a, "HIGHESTMODSEQ"))

# Changes by others: a rename in the Maildir (message 1, by arrival order),
# and a STORE by B, a session of process 2 that never enabled CONDSTORE.
rename_flags(0, "F")
b = login(port2)
typ, dat = b.select("INBOX")
check(typ == "OK", "select b")
typ, dat = b.store("2", "+FLAGS", "(\\Seen)")
check(typ == "OK" and b"MODSEQ" not in dat[0], "store b %r" % dat)

cmd(a, "UID", "FETCH", "1:*", "(FLAGS)", "(CHANGEDSINCE %d)" % h0)
got = fetches(a)
check(set(got) == {1, 2}, "changedsince %r" % got)
check(got[1][0].split() == ["\\Flagged", "\\Recent"] and got[1][1] > h0, "rename seen %r" % got)
check("\\Seen" in got[2][0] and got[2][1] > h0, "store seen %r" % got)
h1 = max(v[1] for v in got.values())

# Conditional STORE: message 1 changed after h0, so UNCHANGEDSINCE h0 fails.
dat = cmd(a, "UID", "STORE", "1:2", "(UNCHANGEDSINCE %d)" % h0, "+FLAGS", "(\\Answered)")
check(code(a, "MODIFIED") == b"1:2", "modified %r" % dat)
a.untagged_responses.pop("FETCH", None)
dat = cmd(a, "UID", "STORE", "1", "(UNCHANGEDSINCE %d)" % h1, "+FLAGS.SILENT", "(\\Answered)")
got = fetches(a)
check(got[1][1] > h1 and "\\Answered" in got[1][0], "conditional store %r" % got)
h2 = got[1][1]

# An expunge by process 2 shows as VANISHED, then VANISHED (EARLIER).
b.store("3", "+FLAGS", "(\\Deleted)")
b.expunge()
cmd(a, "NOOP")
check(code(a, "VANISHED") == b"3", "vanished on noop")
typ, dat = a._simple_command("SEARCH", "MODSEQ", str(h2))
check(typ == "OK" and re.match(rb"1 \(MODSEQ \d+\)", a.untagged_responses.pop("SEARCH")[-1]), "search modseq")

c = login(port2)
cmd(c, "ENABLE", "QRESYNC")
c.state = "SELECTED"  # imaplib does not know SELECT with parameters
dat = cmd(c, "SELECT", "INBOX", "(QRESYNC (%d %d 1:3))" % (validity, h1))
check(code(c, "VANISHED") == b"(EARLIER) 3", "qresync select vanished")
got = fetches(c)
check(set(got) == {1} and got[1][1] == h2, "qresync select fetch %r" % got)
h3 = int(code(c, "HIGHESTMODSEQ"))
check(h3 > h2, "highest after expunge %d %d" % (h3, h2))

# A STORE by C (process 2, QRESYNC) reaches A (process 1) with the
# MODSEQ C was told.
cmd(c, "UID", "STORE", "2", "+FLAGS", "($Label1)")
got = fetches(c)
check(got[2][1] > h3 and "$Label1" in got[2][0], "keyword store %r" % got)
cmd(a, "UID", "FETCH", "1:*", "(FLAGS)", "(CHANGEDSINCE %d)" % h3)
mine = fetches(a)
check(set(mine) == {2} and mine[2][1] == got[2][1] and "$Label1" in mine[2][0],
      "other process's store %r, it said %r" % (mine, got))
h3 = got[2][1]
c.logout()

# The record lost, then damaged: rebuilt, HIGHESTMODSEQ only grows and
# the UIDVALIDITY stays.
last = h3
for damage in ("remove", "garbage"):
    path = os.path.join(maildir, "mailsrv-modseq")
    if damage == "remove":
        os.remove(path)
    else:
        with open(path, "w") as f:
            f.write("mailsrv-modseq 1 V1 H2\nnot a line\n")
    d = login(port1)
    d.state = "SELECTED"
    cmd(d, "SELECT", "INBOX", "(CONDSTORE)")
    check(int(code(d, "UIDVALIDITY")) == validity, "uidvalidity kept")
    h = int(code(d, "HIGHESTMODSEQ"))
    check(h > last, "%s: highest %d after %d" % (damage, h, last))
    last = h
    d.logout()

# A, still selected, hears of the rebuild as changed MODSEQs.
cmd(a, "NOOP")
got = fetches(a)
check(set(got) == {1, 2} and all(v[1] == last for v in got.values()), "after rebuild %r" % got)
typ, dat = a.status("INBOX", "(HIGHESTMODSEQ)")
check(typ == "OK" and dat == [b"INBOX (HIGHESTMODSEQ %d)" % last], "status %r" % dat)
a.logout()
b.logout()
print("ok")
