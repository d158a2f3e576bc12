"""Commands whose help says "Elasticsearch or OpenSearch", run against the real OpenSearch node: ``searchtune index``
(build, refuse overwrite, atomic rebuild) and ``searchtune data mine-negatives`` pick opensearch-py by asking the
cluster what it is; ``--url`` is the same option as ``--es-url``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from searchtune.cli.main import app
from searchtune.search.client import opensearch_client

runner = CliRunner()


@pytest.fixture(scope="module")
def mini_beir(scifact_dir: Path, tmp_path_factory) -> Path:
    """A small BEIR folder from real SciFact: 8 train queries, their relevant documents and 300 others."""
    out = tmp_path_factory.mktemp("mini-beir")
    lines = (scifact_dir / "qrels" / "train.tsv").read_text().splitlines()
    qrels: dict[str, list[str]] = {}
    for line in lines[1:]:
        qid, did, _ = line.split("\t")
        if len(qrels) < 8 or qid in qrels:
            qrels.setdefault(qid, []).append(did)
    wanted = {did for dids in qrels.values() for did in dids}
    with open(scifact_dir / "corpus.jsonl") as source, open(out / "corpus.jsonl", "w") as corpus:
        for n, line in enumerate(source):
            if n < 300 or json.loads(line)["_id"] in wanted:
                corpus.write(line)
    with open(scifact_dir / "queries.jsonl") as source, open(out / "queries.jsonl", "w") as queries:
        queries.writelines(line for line in source if json.loads(line)["_id"] in qrels)
    (out / "qrels").mkdir()
    (out / "qrels" / "train.tsv").write_text(lines[0] + "\n" + "".join(
        f"{qid}\t{did}\t1\n" for qid, dids in qrels.items() for did in dids))
    return out


def test_index_and_mine_against_opensearch(opensearch_url: str, mini_beir: Path, tmp_path: Path) -> None:
    index = f"st8-cli-{os.getpid()}"
    client = opensearch_client(opensearch_url)
    total = sum(1 for _ in open(mini_beir / "corpus.jsonl"))
    try:
        built = runner.invoke(app, ["index", str(mini_beir), "--index", index, "--url", opensearch_url])
        assert built.exit_code == 0, built.output
        assert f"indexed {total} documents" in built.output
        assert client.count(index=index)["count"] == total
        first = set(client.indices.get_alias(name=index))
        mapping = client.indices.get_mapping(index=index)[next(iter(first))]["mappings"]
        assert mapping["properties"]["id"]["type"] == "keyword" and mapping["dynamic"] == "strict"

        again = runner.invoke(app, ["index", str(mini_beir), "--index", index, "--es-url", opensearch_url])
        assert again.exit_code == 1 and "already exists" in again.output
        rebuilt = runner.invoke(app, ["index", str(mini_beir), "--index", index, "--recreate", "--url",
                                      opensearch_url])
        assert rebuilt.exit_code == 0, rebuilt.output
        assert first.isdisjoint(client.indices.get_alias(name=index)) and not client.indices.exists(
            index=next(iter(first)))

        output = tmp_path / "triplets.jsonl"
        mined = runner.invoke(app, ["data", "mine-negatives", str(mini_beir), "--index", index, "--output",
                                    str(output), "--num-negatives", "3", "--top-k", "15", "--url", opensearch_url])
        assert mined.exit_code == 0, mined.output
        triplets = [json.loads(line) for line in output.read_text().splitlines()]
        assert triplets and len({t["query_id"] for t in triplets}) <= 8
        assert all(t["negative_ids"] and t["positive_id"] not in t["negative_ids"] for t in triplets)
    finally:
        client.indices.delete(index=f"{index}-*", ignore_unavailable=True)


def test_unreachable_cluster_is_one_clear_line(mini_beir: Path) -> None:
    result = runner.invoke(app, ["index", str(mini_beir), "--index", "st8-none", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert "cannot reach a search cluster at http://127.0.0.1:9" in " ".join(result.output.split())
    assert "Traceback" not in result.output
