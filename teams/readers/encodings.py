"""Which encoding a CSV file is in: byte order marks, UTF-8, else a detected legacy one.

Detection is by charset-normalizer (https://github.com/jawah/charset_normalizer).
On short Western European text it often ranks a cousin of Windows-1252
(``mac_latin2``, ``cp1250``) first; Windows-1252 is what Excel writes on Western
Windows, so when the guess is any Latin-script code page and the bytes are
valid Windows-1252, Windows-1252 is used. Other scripts (Cyrillic, Greek,
Japanese, Chinese, ...) keep the detected encoding. The ``encoding`` option
overrides all of this.
"""

from __future__ import annotations

import codecs
import re

import charset_normalizer

# (byte order mark, codec used after it, name shown); longest marks first.
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16"),
)
WESTERN = "cp1252"
# Encodings of non-Latin scripts: a detection that lands on one of these is kept.
CYRILLIC = ("cp1251", "koi8", "mac_cyrillic", "iso8859_5", "cp866", "cp855")
OTHER_SCRIPTS = (
    "cp1253", "iso8859_7",
    "mac_greek", "cp1255", "iso8859_8", "cp1256", "iso8859_6", "cp874", "tis", "shift_jis",
    "cp932", "euc", "iso2022", "gb", "big5", "cp950", "cp949", "johab", "hz", "utf",
)  # fmt: skip
NAMES = {
    "utf-8": "UTF-8",
    "utf-16-le": "UTF-16",
    "utf-16-be": "UTF-16",
    "utf-32-le": "UTF-32",
    "utf-32-be": "UTF-32",
    "cp1252": "Windows-1252",
    "cp1250": "Windows-1250",
    "cp1251": "Windows-1251",
    "cp932": "Shift_JIS (Windows)",
    "gb18030": "GB18030",
}
DETECT_BYTES = 256 * 1024


def shown_name(codec: str) -> str:
    """The name people know an encoding by (``cp1252`` → ``Windows-1252``)."""
    try:
        canonical = codecs.lookup(codec).name
    except (LookupError, ValueError):  # ValueError: a NUL in the name
        return codec
    return NAMES.get(canonical, canonical.upper().replace("_", "-").replace("ISO8859", "ISO-8859"))


def is_known(codec: str) -> bool:
    """Whether Python can decode ``codec`` (the ``encoding`` option is checked with this)."""
    try:
        codecs.lookup(codec)
    except (LookupError, ValueError):  # ValueError: "embedded null character"
        return False
    return True


def from_bom(head: bytes) -> tuple[str, int] | None:
    """The codec and the length of the byte order mark ``head`` starts with, if any."""
    for bom, codec, _shown in BOMS:
        if head.startswith(bom):
            return codec, len(bom)
    return None


def _valid_utf8(sample: bytes) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(sample, final=False)  # a character cut at the end of the sample is fine
    except UnicodeDecodeError:
        return False
    return True


def _has_utf8_sequences(sample: bytes) -> bool:
    """Whether the bytes hold well-formed multi-byte UTF-8 characters (mixed files do)."""
    text = sample.decode("utf-8", "surrogateescape")
    return any(ch > "\x7f" and not "\udc80" <= ch <= "\udcff" for ch in text)


def detect(sample: bytes) -> str:
    """The codec for a file without a byte order mark whose first bytes are ``sample``.

    UTF-8 when the sample is valid UTF-8, or broken UTF-8 (``_utf8_shaped``).
    Otherwise charset-normalizer's guess, corrected towards the Windows code page
    of the script it found (what Excel writes): Windows-1251 for Cyrillic,
    Windows-1252 for Latin script. A Latin file that holds well-formed UTF-8
    characters among bad bytes is a UTF-8 file with a few pasted legacy rows:
    read as UTF-8, those rows are reported rather than the whole file misread.
    """
    sample = sample[:DETECT_BYTES]
    if _valid_utf8(sample) or _utf8_shaped(sample):
        return "utf-8"
    results = charset_normalizer.from_bytes(sample)
    best = results.best()
    guess = best.encoding if best is not None else WESTERN
    if guess.startswith(CYRILLIC):
        candidates = {match.encoding for match in results}
        return "cp1251" if "cp1251" in candidates or _decodes(sample, "cp1251") else guess
    if guess.startswith(OTHER_SCRIPTS) and not _latin_in_disguise(sample, guess):
        return guess
    if _has_utf8_sequences(sample):
        return "utf-8"
    return WESTERN if _decodes(sample, WESTERN) else guess


def _utf8_shaped(sample: bytes) -> bool:
    """Whether every run of non-ASCII bytes is a lead byte and continuation bytes.

    That is broken UTF-8 (an overlong form, an encoded surrogate), to be reported
    row by row. Legacy Latin text almost never has this shape: its accented
    letters sit among ASCII letters.
    """
    runs = re.findall(rb"[\x80-\xff]+", sample)
    return bool(runs) and all(re.fullmatch(rb"(?:[\xc0-\xff][\x80-\xbf]+)+", r) for r in runs)


def _latin_in_disguise(sample: bytes, guess: str) -> bool:
    """Whether a non-Latin guess is really accented Latin text (Windows-1252).

    On a short file, charset-normalizer may read ``São Paulo,Ação`` in
    Windows-1252 as Big5 (``S緌 Paulo,A誽o``): two accented letters make one
    ideograph. Real text in another script has its letters next to each
    other; here the "ideographs" sit inside Latin words. So: when at least
    half of the characters the guess decodes outside ASCII touch an ASCII
    letter, and Windows-1252 decodes the bytes to letters, it is Windows-1252.
    """
    if not _decodes(sample, WESTERN):
        return False
    text = sample.decode(guess, "replace")
    others = [i for i, ch in enumerate(text) if ch > "\x7f"]
    if not others:
        return False

    def ascii_letter(i: int) -> bool:
        return 0 <= i < len(text) and text[i].isascii() and text[i].isalpha()

    glued = sum(ascii_letter(i - 1) or ascii_letter(i + 1) for i in others)
    western = [ch for ch in sample.decode(WESTERN) if ch > "\x7f"]
    letters = sum(ch.isalpha() for ch in western)
    return glued * 2 >= len(others) and letters * 5 >= len(western) * 4


def _decodes(sample: bytes, codec: str) -> bool:
    try:
        sample.decode(codec)
    except UnicodeDecodeError:
        return False
    return True
