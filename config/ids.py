"""Public identifiers: random, prefixed, never a sequential primary key (ent_…, je_…)."""

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def new_public_id(prefix: str, length: int = 20) -> str:
    # Base62 digits of one random integer: ~119 bits of entropy for 20 characters,
    # in one call to the CSPRNG (this runs once per ledger entry).
    value = secrets.randbits(6 * length)
    chars = []
    for _ in range(length):
        value, digit = divmod(value, 62)
        chars.append(_ALPHABET[digit])
    return f"{prefix}_" + "".join(chars)


def public_id_factory(prefix: str):
    """A callable for a model field's ``default`` (migrations need a named, importable callable)."""
    return _PublicIdDefault(prefix)


class _PublicIdDefault:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __call__(self) -> str:
        return new_public_id(self.prefix)

    def deconstruct(self):
        return ("config.ids._PublicIdDefault", (self.prefix,), {})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _PublicIdDefault) and other.prefix == self.prefix

    def __hash__(self) -> int:
        return hash(self.prefix)
