"""Links and domains in any form, found in text as a reader sees it.

Model output and the text code quotes from evidence may carry a link meant for the reader
(`rca.drafting.steering`): every form is found and removed, and ordinary dotted technical
names are kept.

Everything is matched on the text as a reader sees it (`seen`): invisible characters removed
(zero-width spaces splitting a word), look-alike letters of other scripts read as Latin
(a Cyrillic "e" in "evil"), full-width and compatibility forms as plain ones, the ideographic
full stop as a dot.

What counts as a link or domain (`link_spans`), whatever its form:

- anything with a scheme, defanged ones too (`https://`, `hxxps://`, `h**p://`, `hxxp[:]//`),
  `www.` names, e-mail addresses, IPv4 addresses with a port or a path, or written defanged;
- a dotted name whose last label is a top-level domain (`evil.example`, `sub.evil.example`,
  `evil[.]example`, `evil(.)example`): the reserved ones (example, test, local, internal...),
  common generic ones and the country codes. Internal host names (`vault.internal`,
  `redis.prod.svc.cluster.local`) and DNS-prefixed label keys (`node-role.kubernetes.io/...`)
  are domains too, and go.

What is kept, because it is not a domain (decided here, tested in `test_steering.py`):

- versions, numbers, bare IPv4 addresses and CIDR ranges (`v2.3.0`, `1.5s`, `10.0.3.7`,
  `104.16.0.0/13`): the last label is not letters;
- file names of two labels whose extension is a file type (`config.yaml`, `main.py`,
  `deploy.sh`, `node.js`), even where the extension is also a country code (`.py`, `.sh`,
  `.md`); three labels or more (`sub.evil.sh`) read as a domain;
- Java-ish package and class names: three labels or more starting with a reverse-DNS root
  (`com.example.checkout.PoolConfig`, `org.postgresql.util.PSQLException`); a two-label
  `com.example` reads as a domain and is removed;
- a camel-case last label (`pool.HikariPool`) or a capitalised one after a lower-case word
  (`restarted.No`: a missing space, not Norway);
- dotted config keys and metric names ending in an ordinary word or a unit (`db.pool.max`,
  `server.host`, `http.server.duration`, `max.poll.interval.ms`): common words that are also
  rare TLDs (host, run, data, group, cloud...) are not treated as TLDs;
- `name.Go()`-style method calls: a last label that is not a TLD (`go`, `js`, `ts`);
- service names (`payments-api`), evidence ids and redaction placeholders (`EMAIL_1`).

A plain-word spelling ("evil dot example") is not caught here; what it would be used for
(a credential hand-over, a disabled alert) is.
"""

from __future__ import annotations

import re
import unicodedata

INVISIBLE = re.compile(
    "[\u00ad\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\ufe00-\ufe0f\ufeff]"
)
"""Characters a reader does not see: zero-width spaces and joiners, soft hyphens, bidi
controls, variation selectors."""

_FROM = (
    "\u0430\u0432\u0435\u0451\u043a\u043c\u043d\u043e\u0440\u0441\u0442\u0443"  # Cyrillic
    "\u0445\u0455\u0456\u0457\u0458\u0501\u051b\u051d\u04bb\u04cf\u0261\u0410"
    "\u0412\u0415\u041a\u041c\u041d\u041e\u0420\u0421\u0422\u0423\u0425\u0405"
    "\u0406\u0408"
    "\u03b1\u03bf\u03c1\u03b9\u03ba\u03bd\u03c4\u03c5\u03c7\u03b5\u0391\u0392"  # Greek
    "\u0395\u0396\u0397\u0399\u039a\u039c\u039d\u039f\u03a1\u03a4\u03a5\u03a7"
    "\u3002\uff61\uff0e\u2024"  # dots
    "\u0131"  # dotless i
)
_TO = (
    "abeekmhopcty"  # Cyrillic
    "xsiijdqwhlgA"
    "BEKMHOPCTYXS"
    "IJ"
    "aopikvtuxeAB"  # Greek
    "EZHIKMNOPTYX"
    "...."  # dots
    "i"  # dotless i
)
_LOOK_ALIKES = dict(zip(_FROM, _TO, strict=True))
"""Letters of other scripts that read as Latin ones, and dots that read as dots."""


def seen(text: str) -> str:
    """`text` as a reader sees it, one character for one (same length, so positions carry
    over): look-alike letters as Latin, full-width and compatibility forms as plain ones.
    Invisible characters are the caller's to remove first (`INVISIBLE`)."""
    if text.isascii():
        return text
    out: list[str] = []
    for char in text:
        mapped = _LOOK_ALIKES.get(char)
        if mapped is None:
            plain = unicodedata.normalize("NFKC", char)
            mapped = _LOOK_ALIKES.get(plain, plain) if len(plain) == 1 else char
        out.append(mapped)
    return "".join(out)


_RESERVED = "example test invalid localhost local internal intranet corp home lan onion arpa"
_GENERIC = (
    "com net org edu gov mil int info biz name pro mobi aero coop museum xxx app dev page "
    "online site website xyz top club shop live link click win bid loan work tech space fun "
    "icu buzz today world life news digital zip mov lol cyou rest bond cfd sbs monster quest "
    "vip one blog wiki ninja rocks agency global asia africa email download review racing "
    "party science stream trade webcam date faith men gq tk ml cf ga accountant cricket "
    "country kim"
)
_COUNTRY = (
    "ac ad ae af ag ai al am ao aq ar as at au aw ax az ba bb bd be bf bg bh bi bj bm bn bo br "
    "bs bt bw by bz ca cc cd cf cg ch ci ck cl cm cn co cr cu cv cw cx cy cz de dj dk dm do dz "
    "ec ee eg er es et eu fi fj fk fm fo fr ga gd ge gf gg gh gi gl gm gn gp gq gr gs gt gu gw "
    "gy hk hm hn hr ht hu id ie il im in io iq ir is it je jm jo jp ke kg kh ki km kn kp kr kw "
    "ky kz la lb lc li lk lr ls lt lu lv ly ma mc md me mg mh mk ml mm mn mo mp mq mr ms mt mu "
    "mv mw mx my mz na nc ne nf ng ni nl no np nr nu nz om pa pe pf pg ph pk pl pm pn pr ps pt "
    "pw py qa re ro rs ru rw sa sb sc sd se sg sh si sk sl sm sn so sr ss st su sv sx sy sz tc "
    "td tf tg th tj tk tl tm tn to tr tt tv tw tz ua ug uk us uy uz va vc ve vg vi vn vu wf ws "
    "ye yt za zm zw"
)
NAMED_TLDS = frozenset((_RESERVED + " " + _GENERIC).split())
"""Top-level domains recognised by name, besides the country codes. Words that are also
common in config keys and package names (host, run, data, group, cloud, service, network,
team, support, tools, store) are left out on purpose."""
TLDS = NAMED_TLDS | frozenset(_COUNTRY.split())
UNITS = frozenset("ms ns us mb gb kb".split())
"""Last labels of three or more that are units of a setting (`max.poll.interval.ms`), though
some are also country codes."""
FILE_EXTENSIONS = frozenset(
    """py sh md rs pl pm cc so ps tf am in mk ml sc js ts go rb kt cs fs hs ex el gz xz db
    zip mov jar war log ai""".split()
)
"""Extensions that make `name.ext` a file name, though the extension is also a TLD."""
REVERSE_ROOTS = frozenset(
    "com org net io dev edu gov java javax jakarta kotlin scala android".split()
)
"""First labels of reverse-DNS package names (`com.example.checkout.PoolConfig`)."""

_DOT = r"(?:\.|\[\.\]|\(\.\)|\{\.\}|\[dot\]|\(dot\)|\{dot\})"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = rf"{_LABEL}(?:{_DOT}{_LABEL})+"
_AT = r"(?:@|\[at\]|\(at\)|\s\[at\]\s|\s\(at\)\s)"
_LINK = re.compile(
    r"(?P<url>(?<![\w-])(?:[a-z][a-z0-9+.-]{0,15}|h\*\*ps?)(?::|\[:\]|\(:\))(?://|\\\\)\S*"
    r"|\b(?:javascript:|vbscript:|data:[a-z]+/[\w.+-]+[;,]|file:/|mailto:\S+@)\S*"
    rf"|\bwww\d{{0,3}}{_DOT}\S*)"
    rf"|(?P<email>[\w.+%-]+{_AT}{_HOST})"
    r"|(?P<ip>\b\d{1,3}(?:(?:\.|\[\.\]|\(\.\))\d{1,3}){3}(?P<port>:\d{1,5}\b|/\S*)?)"
    rf"|(?<![\w@/.\\-])(?P<host>{_HOST})(?P<path>/\S*)?(?![\w-])",
    re.IGNORECASE,
)
_DOTS = re.compile(_DOT, re.IGNORECASE)


def is_domain(name: str) -> bool:
    """Whether a dotted `name` (dots possibly defanged) is a domain (see the module)."""
    labels = _DOTS.split(name)
    last = labels[-1]
    if len(labels) < 2 or not last.isalpha():
        return False
    if any(mark in name for mark in "[](){}"):
        return True  # written defanged: meant as a domain
    lowered = last.lower()
    if lowered not in TLDS or (len(labels) >= 3 and lowered in UNITS):
        return False
    if last[0].isupper() and not last.isupper() and labels[-2].islower():
        return False  # "restarted.No": a missing space; "checkout.Handler": a class
    if any(c.isupper() for c in last[1:]) and not last.isupper():
        return False  # camel case: a class name
    if len(labels) == 2 and lowered in FILE_EXTENSIONS:
        return False
    return not (
        len(labels) >= 3 and labels[0].lower() in REVERSE_ROOTS and lowered not in NAMED_TLDS
    )


def link_spans(text: str) -> list[tuple[int, int]]:
    """Where `text` (as a reader sees it: `seen`) names a link or a domain."""
    spans: list[tuple[int, int]] = []
    for match in _LINK.finditer(text):
        host, ip = match.group("host"), match.group("ip")
        if host is not None and not is_domain(host):
            continue
        port = match.group("port")
        bare = port is None or re.fullmatch(r"/\d{1,2}", port) is not None  # CIDR: a range
        if ip is not None and bare and not set(ip) & set("[("):
            continue  # a bare IPv4 address: kept (written defanged, it is a link)
        start, end = match.span()
        while end > start + 1 and text[end - 1] in ".,;:!?)]}'\"":
            close = text[end - 1]
            opened = {")": "(", "]": "[", "}": "{"}.get(close)
            if opened and text.count(opened, start, end) >= text.count(close, start, end):
                break  # "javascript:alert(1)": the bracket is the link's own
            end -= 1  # sentence punctuation after a link is not part of it
        spans.append((start, end))
    return spans


LINK_REMOVED = "[link removed]"


def strip_links(text: str) -> tuple[str, int]:
    """`text` without invisible characters and with every link or domain, whatever its form,
    replaced by a marker; and how many were removed."""
    text = INVISIBLE.sub("", text)
    spans = link_spans(seen(text))
    if not spans:
        return text, 0
    parts: list[str] = []
    at = 0
    for start, end in spans:
        parts.append(text[at:start])
        parts.append(LINK_REMOVED)
        at = end
    parts.append(text[at:])
    return "".join(parts), len(spans)
