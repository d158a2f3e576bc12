"""The workbench in a real headless Chromium: BM25 against the gateway's `hybrid` pipeline (real gateway, real
`searchtune serve`, real node), grading with the keyboard and the mouse, the grade kept across a reload and found in
the judgment-list files, the query-set table sorted and linked, and two workbench processes written to at once."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import Select, WebDriverWait

from searchtune.data import load_dataset

from .conftest import PIPELINE, start_workbench

#: A folder that also gets the compare view's screenshot (for a closing note); by default only the test's tmp folder.
SCREENSHOT_DIR = os.environ.get("SEARCHTUNE_TEST_SCREENSHOT_DIR")
LIST = "wb-browser"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("wb-store")


@pytest.fixture(scope="module")
def workbench(wb_index: str, wb_gateway, wb_dataset: Path, es_url: str, store: Path):
    child = start_workbench(["--index", wb_index, "--es-url", es_url, "--gateway", wb_gateway.url,
                             "--dataset", str(wb_dataset), "--judgments", LIST], store)
    yield child
    child.stop()


def _columns(driver) -> dict[str, list[str]]:
    sections = driver.find_elements(By.CSS_SELECTOR, "section.ranking")
    return {s.get_attribute("data-config"): [li.get_attribute("data-doc-id")
                                             for li in s.find_elements(By.CSS_SELECTOR, "li.hit")] for s in sections}


def _wait(driver, seconds: float = 120):
    return WebDriverWait(driver, seconds)


def _list_files(store: Path) -> tuple[str, list[dict]]:
    folder = store / "judgments" / LIST
    events = [json.loads(line) for line in (folder / "judgments.jsonl").read_text().splitlines()]
    return (folder / "qrels.txt").read_text(), events


def test_compare_grade_reload_and_find_it_in_the_list(chrome, workbench, wb_dataset: Path, store: Path,
                                                      tmp_path: Path) -> None:
    chrome.get(f"{workbench.url}/?c=bm25&c={PIPELINE}")
    assert [o.text for o in Select(chrome.find_element(By.CSS_SELECTOR, "select.config-picker")).options][:2] == \
        ["bm25", PIPELINE]
    queries = list(load_dataset(wb_dataset).split_queries("test").values())
    columns: dict[str, list[str]] = {}
    for query in queries[:5]:  # run queries from the box until the two configurations disagree
        box = chrome.find_element(By.ID, "query-box")
        box.clear()
        box.send_keys(query.text, Keys.ENTER)
        _wait(chrome).until(ready.text_to_be_present_in_element((By.ID, "query-title"), query.text))
        columns = _columns(chrome)
        assert not [e.text for e in chrome.find_elements(By.CSS_SELECTOR, ".ranking .error")]
        if columns["bm25"] != columns[PIPELINE]:
            break
    assert set(columns) == {"bm25", PIPELINE} and len(columns["bm25"]) == 10 and len(columns[PIPELINE]) == 10
    assert columns["bm25"] != columns[PIPELINE], "BM25 and the hybrid pipeline returned the same ten documents"
    title = chrome.find_element(By.ID, "query-title")
    qid = title.get_attribute("data-query-id")
    assert qid == query.id  # typed text that matches a dataset query gets its id (and its judgments)
    hybrid_header = chrome.find_element(By.CSS_SELECTOR, f'section[data-config="{PIPELINE}"] .ndcg').text
    assert hybrid_header.startswith("NDCG@10 ")
    assert chrome.find_elements(By.CSS_SELECTOR, f'section[data-config="{PIPELINE}"] .move')  # rank movement marks
    if set(columns[PIPELINE]) - set(columns["bm25"]):
        assert chrome.find_elements(By.CSS_SELECTOR, f'section[data-config="{PIPELINE}"] .move.new')

    rater = chrome.find_element(By.ID, "rater")
    rater.clear()
    rater.send_keys("selenium-rater")
    unjudged = chrome.find_elements(By.CSS_SELECTOR, f'section[data-config="{PIPELINE}"] li.hit.unjudged')
    assert len(unjudged) >= 2, "expected unjudged documents in the hybrid list"
    by_key, by_click = unjudged[0].get_attribute("data-doc-id"), unjudged[1].get_attribute("data-doc-id")
    unjudged[0].click()
    chrome.switch_to.active_element.send_keys("2")  # keyboard grading of the focused result
    mark = f'section[data-config="{PIPELINE}"] li.hit[data-doc-id="{by_key}"] .grade-mark'
    _wait(chrome).until(ready.text_to_be_present_in_element((By.CSS_SELECTOR, mark), "grade 2"))
    unjudged[1].find_element(By.CSS_SELECTOR, '.grade-button[data-grade="0"]').click()
    mark = f'section[data-config="{PIPELINE}"] li.hit[data-doc-id="{by_click}"] .grade-mark'
    _wait(chrome).until(ready.text_to_be_present_in_element((By.CSS_SELECTOR, mark), "grade 0"))
    screenshot = chrome.get_screenshot_as_png()
    assert screenshot.startswith(b"\x89PNG"), "the compare view's screenshot is not a PNG"
    (tmp_path / "compare.png").write_bytes(screenshot)
    if SCREENSHOT_DIR:
        (Path(SCREENSHOT_DIR) / "workbench-compare.png").write_bytes(screenshot)

    chrome.refresh()
    _wait(chrome).until(ready.presence_of_element_located((By.CSS_SELECTOR, "section.ranking")))
    kept = chrome.find_elements(By.CSS_SELECTOR, f'li.hit[data-doc-id="{by_key}"]')
    assert kept and all("g2" in li.get_attribute("class").split() for li in kept)
    assert kept[0].find_element(By.CSS_SELECTOR, ".grade-mark").text == "grade 2"
    assert chrome.find_element(By.ID, "list-version").text == "2"

    qrels, events = _list_files(store)
    assert f"{qid} 0 {by_key} 2\n" in qrels and f"{qid} 0 {by_click} 0\n" in qrels
    assert [(e["doc_id"], e["grade"], e["rater"]) for e in events] == [(by_key, 2, "selenium-rater"),
                                                                        (by_click, 0, "selenium-rater")]
    assert all(e["time"] and e["query"] == query.text for e in events)


def test_query_set_table_sorts_counts_unjudged_and_links(chrome, workbench) -> None:
    chrome.get(f"{workbench.url}/queryset?set=test&c=bm25&c={PIPELINE}")
    table = _wait(chrome, 300).until(ready.presence_of_element_located((By.ID, "query-table")))
    rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert len(rows) == 10
    headers = table.find_elements(By.CSS_SELECTOR, "thead th")
    assert [h.text for h in headers][1:4] == ["bm25 NDCG@10", "bm25 MRR@10", "bm25 Recall@10"]
    wins = chrome.find_element(By.ID, "wins-losses").text
    assert f"{PIPELINE} against bm25 on NDCG@10" in wins and "top-10 documents have no grade" in wins
    delta_column = len(headers) - 2

    def deltas() -> list[float]:
        return [float(r.find_elements(By.TAG_NAME, "td")[delta_column].get_attribute("data-value"))
                for r in table.find_elements(By.CSS_SELECTOR, "tbody tr")]

    headers[delta_column].click()  # numbers sort best first, a second click reverses
    assert deltas() == sorted(deltas(), reverse=True) and len(set(deltas())) > 1, deltas()
    headers[delta_column].click()
    assert deltas() == sorted(deltas())
    unjudged = [int(r.find_elements(By.TAG_NAME, "td")[-1].get_attribute("data-value")) for r in rows]
    assert sum(unjudged) > 0 and str(sum(unjudged)) in wins  # the count is listed per row and in total
    first = table.find_element(By.CSS_SELECTOR, "tbody tr")
    qid = first.get_attribute("data-query-id")
    first.find_element(By.TAG_NAME, "a").click()
    title = _wait(chrome).until(ready.presence_of_element_located((By.ID, "query-title")))
    assert title.get_attribute("data-query-id") == qid and len(_columns(chrome)) == 2


def test_two_workbenches_on_one_list_lose_nothing(workbench, wb_index: str, wb_gateway, es_url: str,
                                                  store: Path) -> None:
    """A second process on the same store and list; two clients post at once, one to each."""
    other = start_workbench(["--index", wb_index, "--es-url", es_url, "--judgments", LIST], store)
    errors: list[str] = []

    def rate(url: str, rater: str) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            for i in range(15):
                answer = client.post("/api/grades", json={"grades": [
                    {"query_id": f"cc-{i % 3}", "query": f"concurrent {i % 3}", "doc_id": f"{rater}-{i}",
                     "grade": i % 4, "rater": rater}]})
                if answer.status_code != 200:
                    errors.append(answer.text)
    try:
        before = len(_list_files(store)[1])
        threads = [threading.Thread(target=rate, args=(url, name))
                   for url, name in ((workbench.url, "ana"), (other.url, "bo"))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(180)
    finally:
        other.stop()
    assert not errors
    qrels, events = _list_files(store)
    assert len(events) == before + 30 and [e["version"] for e in events] == list(range(1, before + 31))
    for rater in ("ana", "bo"):
        for i in range(15):
            assert f"cc-{i % 3} 0 {rater}-{i} {i % 4}\n" in qrels
    bad = httpx.post(f"{workbench.url}/api/grades", json={"grades": [{"query_id": "x", "doc_id": "d", "grade": 7}]})
    assert bad.status_code == 400 and "outside the list's graded scale" in bad.json()["error"]
    missing = httpx.post(f"{workbench.url}/api/grades", json={"grades": [{"query_id": "x", "grade": 1}]})
    assert missing.status_code == 400 and "grades.0.doc_id" in missing.json()["error"]
