from tests.support.privacy_scan import findings, personal_data_used_in_tests


def test_the_scan_finds_a_bsn_a_name_and_a_date_of_birth():
    texts = [("a", '{"x": "111222333"}'), ("b", "Anouk Voorbeeld called"), ("c", "born 1981-03-04")]
    assert len(findings(texts, {"Anouk Voorbeeld", "1981-03-04"})) == 3


def test_the_scan_ignores_numbers_that_are_pieces_of_ids_or_fail_the_eleven_test():
    texts = [("uuid", "6f1c2a57-4a3b-4c0e-9a55-111222333000"), ("hash", "ab111222333cd"),
             ("long", "1111222333"), ("not-a-bsn", "123456789")]
    assert findings(texts, set()) == []


def test_the_names_the_tests_use_are_known_to_the_scan():
    used = personal_data_used_in_tests()
    assert {"Fenna Testpersoon", "Anouk Voorbeeld", "Demo Deelnemer", "1980-04-12"} <= used
