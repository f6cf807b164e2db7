"""The nine providers that won the 2005 tender (contracts from 1 January 2006), by the
slug every service and credential uses for them."""

PROVIDERS: dict[str, str] = {
    "actief-talent": "Actief Talent",
    "agens": "Agens",
    "aim": "AIM",
    "alexander-calder": "Alexander Calder Reïntegratie",
    "dhg": "DHG",
    "inova": "INOVA",
    "iwa-wurkympuls": "IWA Wurkympuls",
    "nieuwland": "Nieuwland Opleidingen",
    "serin": "Serin",
}
