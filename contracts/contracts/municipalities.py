"""The five municipalities of the 2005 tender: the tenants of Tweespoor."""

from typing import Literal, get_args

Municipality = Literal["alkmaar", "bergen", "castricum", "heerhugowaard", "heiloo"]
MUNICIPALITIES: tuple[str, ...] = get_args(Municipality)

# CBS municipality codes as they stood at the time of the tender
# (Heerhugowaard merged into Dijk en Waard in 2022; its referrals keep the old code).
CBS_CODES: dict[str, str] = {
    "alkmaar": "0361",
    "bergen": "0373",
    "castricum": "0383",
    "heerhugowaard": "0398",
    "heiloo": "0399",
}


def oin(municipality: str) -> str:
    """The organisation's OIN (20 digits) that names it in CloudEvent sources.

    Placeholder OINs in the shape of the Logius register ("00000001" prefix), built
    from the CBS code, until the municipalities' own OINs are configured.
    """
    return f"0000000100000{CBS_CODES[municipality]}000"
