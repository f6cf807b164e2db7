from contracts.schemas import SCHEMA_DIR, render


def test_the_committed_json_schemas_are_up_to_date():
    expected = render()
    found = {p.name: p.read_text() for p in SCHEMA_DIR.glob("*.json")}
    assert found == expected, "run `uv run tweespoor-schemas` and commit contracts/schemas/"


def test_every_schema_names_its_cloudevents_type_and_forbids_extra_fields():
    import json

    for name, content in render().items():
        schema = json.loads(content)
        assert name == f"{schema['x-cloudevents-type']}.json"
        assert schema["additionalProperties"] is False
        assert "trajectory_id" in schema["required"]
