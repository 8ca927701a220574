"""`plain-crm-sync backfill` through the real CLI against the fake Plain API."""

from __future__ import annotations

from tests.sync.conftest import cli, members, queued, setup


def test_smoke(tmp_path, fake, api_url):
    ent = fake.data.add_group("enterprise")
    ids = [fake.data.add_customer(f"C {i:03d}", f"c{i}@example.com", groups=[ent]) for i in range(150)]
    config = setup(tmp_path, api_url)
    result = cli("backfill", "--config", str(config))
    assert result.returncode == 0, result.stderr
    print(result.stdout, result.stderr)
    assert members(config, ent) == set(ids)
    assert len(queued(config)) == 150
