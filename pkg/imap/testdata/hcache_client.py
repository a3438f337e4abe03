"""Read a folder's headers with Python's imaplib, for the header cache test.

Usage: hcache_client.py HOST PORT USER PASSWORD dump
    Prints what FETCH (ENVELOPE, header fields, whole headers, dates,
    sizes, BODYSTRUCTURE) and UID SEARCH on header keys answer for every message, one
    response per line, so that runs with and without the cache compare.
Usage: hcache_client.py HOST PORT USER PASSWORD stale UID
    A session reads every envelope (the cache warm), then a second
    connection (another imapd process under tcpserver) expunges UID; the
    first session's UID FETCH of UID must not answer its envelope. Prints
    the first session's answer.
"""
import imaplib
import sys

host, port, user, password, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]

FETCHES = [
    "(UID ENVELOPE)",
    "(UID INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (Subject From Date)])",
    "(UID BODY.PEEK[HEADER.FIELDS (X-Other)])",
    "(UID BODY.PEEK[HEADER.FIELDS.NOT (Received)])",
    "(UID RFC822.HEADER)",
    "(UID BODYSTRUCTURE)",
    "(UID ENVELOPE BODYSTRUCTURE INTERNALDATE)",
]
SEARCHES = [
    ("HEADER", "SUBJECT", '"budget review"'),
    ("SUBJECT", "budget"),
    ("FROM", '"S\xf8ren"'),
    ("FROM", "example.test"),
    ("TO", "y@example.test"),
    ("HEADER", "X-Other", "cached"),
    ("SENTSINCE", "1-Feb-2026"),
    ("SENTBEFORE", "1-Feb-2026"),
    ("OR", "SUBJECT", "odd", "NOT", "FROM", "b@example.test"),
    ("SUBJECT", "broken", "BODY", "body"),
    ("SINCE", "1-Jan-2000"),
]


def login():
    m = imaplib.IMAP4(host, port)
    m.login(user, password)
    typ, _ = m.select("INBOX")
    if typ != "OK":
        raise SystemExit("select: " + typ)
    return m


def dump():
    m = login()
    for items in FETCHES:
        typ, data = m.fetch("1:*", items)
        if typ != "OK":
            raise SystemExit("fetch %s: %s %r" % (items, typ, data))
        for d in data:
            print(repr(d))
    for key in SEARCHES:
        if any(not k.isascii() for k in key):
            m.literal = key[1][1:-1].encode("utf-8")
            typ, data = m.uid("SEARCH", "CHARSET", "UTF-8", key[0])
        else:
            typ, data = m.uid("SEARCH", *key)
        print(key, typ, data)
    m.logout()


def stale(uid):
    a = login()
    typ, data = a.fetch("1:*", "(UID ENVELOPE)")
    if typ != "OK" or not any((b"UID %s " % uid.encode()) in d for d in data if isinstance(d, bytes)):
        raise SystemExit("first fetch: %s %r" % (typ, data))
    b = login()
    b.uid("STORE", uid, "+FLAGS.SILENT", "(\\Deleted)")
    b.expunge()
    b.logout()
    try:
        typ, data = a.uid("FETCH", uid, "(ENVELOPE)")
    except imaplib.IMAP4.error as e:
        typ, data = "NO", [str(e)]
    print(typ, data)
    a.logout()


if mode == "dump":
    dump()
else:
    stale(sys.argv[6])
