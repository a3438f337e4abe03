"""IMAP4rev2 and UTF8=ACCEPT with Python's imaplib, a rev1 client we did not
write: ENABLE sent raw (_simple_command) and through IMAP4.enable, then
what changes, and a plain rev1 session that still sees modified UTF-7.

Usage: imaplib_rev2.py HOST PORT USER PASSWORD
Prints "ok" and exits 0 when every check passed.
"""
import imaplib
import sys

host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]


def check(cond, what):
    if not cond:
        raise SystemExit("check failed: " + what)


# A: rev1 first, then ENABLE IMAP4rev2 as a raw command.
m = imaplib.IMAP4(host, port)
for cap in ("IMAP4REV1", "IMAP4REV2", "UTF8=ACCEPT", "CREATE-SPECIAL-USE", "ENABLE"):
    check(cap in m.capabilities, "capability %s in %r" % (cap, m.capabilities))
m.login(user, password)
check(m.create("&AOk-t&AOk-")[0] == "OK", "create in modified UTF-7")
typ, data = m._simple_command("ENABLE", "IMAP4rev2", "X-NOTHING")
check(typ == "OK", "enable %r" % data)
typ, data = m._untagged_response(typ, data, "ENABLED")
check(data == [b"IMAP4rev2"], "ENABLED %r" % data)
typ, data = m.list('""', '"*t*"')
check(typ == "OK" and b'(\\HasNoChildren) "/" "\xc3\xa9t\xc3\xa9"' in data, "rev2 list %r" % data)
typ, data = m._simple_command("CREATE", '"R\xe9unions"'.encode(), "(USE (\\Archive))")
check(typ == "OK", "create with USE %r" % data)
typ, data = m._simple_command("CREATE", "Everything", "(USE (\\All))")
check(typ == "NO" and data[0].startswith(b"[USEATTR]"), "create with USE \\All %r" % data)
typ, data = m.list('""', '"R*"')
check(data == [b'(\\HasNoChildren \\Archive) "/" "R\xc3\xa9unions"'], "special-use list %r" % data)
typ, data = m.select("INBOX")
check(typ == "OK" and data == [b"1"], "select %r" % data)
check("RECENT" not in m.untagged_responses, "RECENT in rev2: %r" % m.untagged_responses)
check(m.untagged_responses.get("LIST") == [b'(\\HasNoChildren) "/" INBOX'],
      "LIST on SELECT %r" % m.untagged_responses)
typ, data = m.search(None, "ALL")
check(typ == "OK" and data == [None], "rev2 SEARCH gave a SEARCH response %r" % data)
check(m.untagged_responses.pop("ESEARCH", None) is not None, "no ESEARCH")
typ, data = m.store("1", "+FLAGS", "(\\Deleted)")
check(typ == "OK" and data == [b"1 (FLAGS (\\Deleted))"], "store without \\Recent %r" % data)
typ, data = m.status("INBOX", "(MESSAGES DELETED)")
check(data == [b"INBOX (MESSAGES 1 DELETED 1)"], "status deleted %r" % data)
typ, data = m.select('"\xe9t\xe9"'.encode())
check(typ == "OK" and m.untagged_responses.get("OK", [b""])[0].startswith(b"[CLOSED]"),
      "select UTF-8 name %r %r" % (data, m.untagged_responses))
check(m.logout()[0] == "BYE", "logout")

# B: IMAP4.enable("UTF8=ACCEPT"), imaplib's own API: it then sends UTF-8.
m = imaplib.IMAP4(host, port)
m.login(user, password)
typ, data = m.enable("UTF8=ACCEPT")
check(typ == "OK" and m.utf8_enabled, "enable UTF8=ACCEPT %r" % data)
check(m.create('"Caf\xe9/Cr\xe8me"')[0] == "OK", "create UTF-8 name")
typ, data = m.list('""', '"Caf*/*"')
check(data == [b'(\\HasNoChildren) "/" "Caf\xc3\xa9/Cr\xc3\xa8me"'], "utf8 list %r" % data)
typ, data = m.select("INBOX")
check(m.untagged_responses.get("RECENT") is not None, "UTF8=ACCEPT alone keeps RECENT")
typ, data = m.search(None, "ALL")
check(data == [b"1"], "SEARCH stays rev1 without IMAP4rev2 %r" % data)
try:
    m.search("UTF-8", "ALL")
    raise SystemExit("SEARCH CHARSET accepted after UTF8=ACCEPT")
except imaplib.IMAP4.error:
    pass
check(m.logout()[0] == "BYE", "logout")

# C: a plain rev1 client sees the same folders in modified UTF-7.
m = imaplib.IMAP4(host, port)
m.login(user, password)
typ, data = m.list('""', "*")
for want in (b'"/" &AOk-t&AOk-', b'\\Archive) "/" R&AOk-unions', b'"/" Caf&AOk-/Cr&AOg-me'):
    check(any(d.endswith(want) for d in data), "rev1 list lacks %r: %r" % (want, data))
typ, data = m.select("INBOX")
check(typ == "OK" and m.untagged_responses.get("RECENT") is not None, "rev1 RECENT")
typ, data = m.search(None, "DELETED")
check(data == [b"1"], "rev1 search %r" % data)
typ, data = m.lsub()
check(typ == "OK", "rev1 LSUB %r" % data)
check(m.logout()[0] == "BYE", "logout")
print("ok")
