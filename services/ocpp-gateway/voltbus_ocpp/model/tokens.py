"""An id token as the model keeps it: its value and its type (OCPP 2.0.1 IdTokenType).

OCPP 1.6 has no token types: its adapter makes every token ISO14443 (an RFID uid, which is what a
1.6 idTag is on this station), so 1.6 matches on the value as it always did. In 2.0.1 the local
list and the cache hold entries per IdToken (value and type, C13/C14) and a transaction carries
the type it was authorised with (a RequestStartTransaction's Central or eMAID token stays so in
its Authorize and TransactionEvents).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class TokenType(StrEnum):
    """IdTokenEnumType (OCPP 2.0.1), spelled as on the wire."""

    CENTRAL = "Central"
    EMAID = "eMAID"
    ISO14443 = "ISO14443"
    ISO15693 = "ISO15693"
    KEY_CODE = "KeyCode"
    LOCAL = "Local"
    MAC_ADDRESS = "MacAddress"
    NO_AUTHORIZATION = "NoAuthorization"


@dataclass(frozen=True)
class IdToken:
    """An id token: value (2.0.1: up to 36 characters; empty only for NoAuthorization) and type.

    Two tokens are the same when value and type are (a card and a Central token with the same
    characters are different tokens). str() is the value, for logs and the bus.
    """

    value: str
    type: TokenType = TokenType.ISO14443

    def __str__(self) -> str:
        return self.value if self.type is TokenType.ISO14443 else f"{self.value} ({self.type})"

    @property
    def free(self) -> bool:
        """NoAuthorization: free charging, nobody to authorise (its value is empty)."""
        return self.type is TokenType.NO_AUTHORIZATION


def as_token(tag: IdToken | str) -> IdToken:
    """A plain string (a caller, or a record written before tokens had types) is an RFID card's
    uid: ISO14443, what the station sent for every token before."""
    return tag if isinstance(tag, IdToken) else IdToken(tag)


def stored_type(value: str | None) -> TokenType:
    """A type read from disk; missing (a row from before types were kept) is ISO14443, the type
    the station sent for every token then (so a recovered transaction keeps what the central
    system saw)."""
    return TokenType(value) if value else TokenType.ISO14443
