"""The quickstart as a sequence of stages, each calling the same functions as its own subcommand.

Order: search node -> index -> BM25 baseline -> data (validate, split, stage, mine) -> train -> register/promote ->
serve from the registry -> gateway + pipeline -> evaluate through the gateway -> report. Every process started is
registered on an ExitStack so that normal exit, an error or Ctrl-C stops it (unless ``keep_running``).
"""

from __future__ import annotations

import json
import logging
import random
import secrets
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from searchtune.data.records import Dataset
from searchtune.eval.metrics import EvalResult, evaluate
from searchtune.eval.report import ExampleQuery, ReportInput, write_report
from searchtune.gateway.auth import ADMIN_KEY_HEADER
from searchtune.quickstart.monitor import PeakMemory, StageClock
from searchtune.quickstart.options import QuickstartOptions
from searchtune.storage import atomic_write_json
from searchtune.train.schedule import budget_cut_note

log = logging.getLogger(__name__)

#: Port of the cross-encoder's server in the report's Reproduce commands (the embedder's is 8080).
RERANKER_EXAMPLE_PORT = 8081

#: The DashScope-dialect rerank route of `searchtune serve` the quickstart's pipeline calls (as the Bailian guide).
DASHSCOPE_RERANK_PATH = "/api/v1/services/rerank/text-rerank/text-rerank"


@dataclass
class QuickstartResult:
    report_dir: Path
    systems: dict[str, EvalResult]
    stage_seconds: dict[str, float]
    peak_memory_gib: float
    urls: dict[str, str] = field(default_factory=dict)
    deployment: str | None = None   # which stack won the validation, by how much, how sure


def _subset(dataset: Dataset, split: str, limit: int | None, seed: int) -> Dataset:
    """Keep at most ``limit`` judged queries of ``split`` (seeded), for quick runs and tests."""
    if not limit:
        return dataset
    qrels = dataset.split_qrels(split)
    keep = sorted(qrels)
    random.Random(seed).shuffle(keep)
    chosen = set(keep[:limit])
    dataset.qrels[split] = {q: d for q, d in qrels.items() if q in chosen}
    return dataset


class Quickstart:
    """One run. ``run()`` returns the result; processes started are stopped on exit unless asked to keep them."""

    def __init__(self, options: QuickstartOptions, announce=print):
        self.o = options
        self.say = announce
        self.clock = StageClock()
        self.memory = PeakMemory()
        self.stack = ExitStack()
        self.urls: dict[str, str] = {}
        self.bm25_weight: float | None = None  # the pipeline's, from training's tuned fusion weight
        self.served_embedder: str | None = None  # what the deployed hybrid's server serves (a ref or a path)
        self.reranker_record: dict | None = None  # --task both: the cross-encoder's training record
        self.reranker_deployed = False
        self.deployed_pipeline: dict | None = None  # the body PUT on the gateway (the report's Reproduce block)
        self.o.workdir.mkdir(parents=True, exist_ok=True)
        self.store = self.o.store  # the work folder's own unless --store: never the user's SEARCHTUNE_STORE
        self.admin_key = secrets.token_urlsafe(24)  # this run's gateway admin key, for its pipeline PUT only

    # ------------------------------------------------------------------ stages
    def start_search(self) -> str:
        from searchtune.config import es_port
        from searchtune.nodes.elasticsearch_node import elasticsearch_node

        if self.o.es_url:
            self.say(f"using the cluster at {self.o.es_url}")
            return self.o.es_url
        node = elasticsearch_node(port=es_port())  # SEARCHTUNE_ES_PORT, as `searchtune es start` reads it
        was_running = node.pid() is not None
        url = node.start()
        if not was_running and not self.o.keep_running:
            self.stack.callback(node.stop)
        if node.pid():
            self.memory.extra_pids.add(node.pid())
        self.say(f"Elasticsearch {'reused' if was_running else 'started'} at {url}")
        return url

    def index_corpus(self, client, dataset: Dataset, index: str) -> None:
        from searchtune.search.indexing import build_index, index_exists

        if index_exists(client, index) and not self.o.reindex:
            count = int(client.count(index=index)["count"])
            if count == len(dataset.corpus):
                self.say(f"index '{index}' already holds the {count} documents: reused (pass --reindex to rebuild)")
                return
            self.say(f"index '{index}' holds {count} documents, the corpus {len(dataset.corpus)}: rebuilding")
        count = build_index(client, index, dataset.corpus.values(), total=len(dataset.corpus), recreate=True)
        self.say(f"indexed {count} documents into '{index}'")

    def baseline(self, client, dataset: Dataset, index: str):
        from searchtune.search.retrieval import bm25_search, parse_fields

        queries = dataset.split_queries(self.o.test_split)
        run, docs = bm25_search(client, index, queries, fields=parse_fields(self.o.fields), top_k=100, with_source=True)
        result = evaluate(dataset.split_qrels(self.o.test_split), run)
        self.say(f"BM25 on {len(queries)} {self.o.test_split} queries: NDCG@10 {result.aggregate['NDCG@10']:.4f}")
        return run, docs, result

    def prepare_data(self, client, dataset: Dataset, index: str) -> tuple[Dataset, Path, dict]:
        from searchtune.data.mining import mine_negatives
        from searchtune.data.split import split_by_query
        from searchtune.data.stage import stage_dataset
        from searchtune.data.validate import validate_path
        from searchtune.data.examples import write_triplets
        from searchtune.search.retrieval import parse_fields

        report = validate_path(self.o.dataset)
        if not report.ok:
            raise RuntimeError(f"dataset is invalid: {report.errors[0]}")
        for warning in report.warnings[:3]:
            log.warning("dataset: %s", warning)
        uri = f"{self.store.rstrip('/')}/datasets/{dataset.name}"
        manifest = stage_dataset(self.o.dataset, uri, overwrite=True)
        self.say(f"staged {dataset.name} to {uri} ({len(manifest.files)} files, manifest last)")
        split = split_by_query(dataset, {"train": 1 - self.o.dev_fraction, "dev": self.o.dev_fraction},
                               seed=self.o.seed, source_split=self.o.train_split)
        split = _subset(split, "train", self.o.max_train_queries, self.o.seed)
        split = _subset(split, "dev", max(5, (self.o.max_train_queries or 0) // 5) if self.o.max_train_queries else None,
                        self.o.seed)
        from searchtune.search.retriever import BM25Retriever

        mined = mine_negatives(BM25Retriever(client, index, parse_fields(self.o.fields)), split, split="train",
                               drop_above_positive=self.o.mine_drop_above_positive)
        triplets_path = self.o.workdir / "train-triplets.jsonl"
        write_triplets(mined.triplets, triplets_path)
        stats = mined.stats() | {"dataset_uri": uri, "manifest_files": len(manifest.files)}
        self.say(f"mined {len(mined.triplets)} triplets from {stats.get('queries')} train queries "
                 f"({mined.queries_per_second:.0f} queries/s, {mined.drop_share:.1%} candidates dropped by the guard)")
        return split, triplets_path, stats

    def train(self, client, split: Dataset, index: str, triplets_path: Path) -> tuple[Path, dict]:
        from searchtune.quickstart.training import train_within_budget
        from searchtune.train.memory import return_freed_memory

        output = self.o.workdir / "model"
        if self.o.task == "rerank":  # distilled from zero-shot hybrid: the only cross-encoder recipe that works here
            from searchtune.quickstart.rerank import train_distilled

            record = train_distilled(self.o, client, split, index, output, self.say)
        else:
            record = train_within_budget(self.o, client, split, index, triplets_path, output)
        return_freed_memory("training")
        final = (record.get("dev") or {}).get("final") or {}
        schedule = record.get("schedule") or {}
        scored = (f"dev NDCG@10 {final['dev_ndcg@10']:.4f}, fused {final.get('dev_fused_ndcg@10', float('nan')):.4f}"
                  if "dev_ndcg@10" in final else "validated on dev in the stack choice")
        what = "the embedder" if self.o.trains_embedder else "the cross-encoder"
        self.say(f"trained {what} in {record.get('train_seconds', 0):.0f}s, {schedule.get('steps_done')} of "
                 f"{schedule.get('planned_steps')} planned steps; {scored}")
        if budget_cut_note(record):
            log.warning("%s", budget_cut_note(record))
            self.say(f"WARNING: {budget_cut_note(record)}")
        return output, record

    def choose(self, client, split: Dataset, index: str, model_dir: Path, record: dict):
        from searchtune.serve.embedder import open_serving_embedder
        from searchtune.train.choose import choose_deployed_stack, judged_training_qrels

        return choose_deployed_stack(client, split, judged_training_qrels(split), index, self.o.fields,
                                     str(model_dir), record, self.o.max_length, self.o.seed, self.say,
                                     validation=self.o.validation, cache=self.o.workdir / "cache",
                                     open_embedder=open_serving_embedder)

    def deploy_chosen(self, client, index: str, model_dir: Path, record: dict, choice):
        """Register the trained model (prod only when it won), serve and index the winner's embedder, and the
        pipeline body: none for BM25 (a plain pipeline), ``hybrid`` with the base or the tuned model."""
        from searchtune.train.choose import BM25, TUNED
        from searchtune.quickstart.hybrid import hybrid_pipeline, index_vectors, plain_pipeline

        try:
            with self.clock.stage("register + serve"):
                ref = self.publish(model_dir, record, promote=choice.winner == TUNED)
                if choice.winner == BM25:
                    return None, plain_pipeline(), None
                from searchtune.models import default_base_model

                served = ref if choice.winner == TUNED else default_base_model()
                self.served_embedder = served
                model_id = ref if choice.winner == TUNED else "all-MiniLM-L6-v2"
                # the pipeline sends model_id with every query: the server must answer to it (a bundled folder's
                # own name is "model"; unanswered, every search fell back to BM25 order with a 404)
                endpoint = self.serve(served, names=[model_id])
            embedder = choice.embedder()
            if choice.winner == TUNED:  # the index records the registry version, not the training folder
                from searchtune.vectors.embedders import resolve_local_model

                embedder.identity = resolve_local_model(ref, self.store)[1]
            with self.clock.stage("index vectors"):
                record["vectors"] = index_vectors(client, index, embedder, self.say)
            return endpoint, hybrid_pipeline(model_id, endpoint, choice.weight), choice.weight
        finally:
            choice.close()

    def plan_task(self, split: Dataset, dataset: Dataset):
        """Resolve ``--task auto`` from the data sizes and the cap (quickstart/plan.py); says and returns why."""
        from searchtune.quickstart.plan import plan_task
        from searchtune.quickstart.rerank import RERANK_WINDOW

        plan = plan_task(self.o.task, self.o.budget_minutes, train_queries=len(split.split_queries("train")),
                         dev_queries=len(split.split_queries("dev")),
                         test_queries=len(dataset.split_queries(self.o.test_split)), corpus_docs=len(dataset.corpus),
                         window=RERANK_WINDOW, max_steps=self.o.train_overrides.get("max_steps"))
        self.o.task = plan.task
        self.say(plan.reason)
        return plan

    def _plan_info(self, plan) -> dict:
        info: dict = {"task": plan.task, "task_reason": plan.reason}
        if plan.embed_s:
            info["estimated_minutes"] = {"embedder": round(plan.embed_s / 60, 1),
                                         "cross_encoder": round(plan.reranker_s / 60, 1)}
        if self.reranker_record is not None:
            final = (self.reranker_record.get("dev") or {}).get("final") or {}
            info["cross_encoder"] = {"deployed": self.reranker_deployed, "dev": final,
                                     "teacher": self.reranker_record["data"]["distill"]["teacher"],
                                     "schedule": self.reranker_record.get("schedule"),
                                     "train_seconds": self.reranker_record.get("train_seconds")}
        return info

    def add_reranker(self, client, split: Dataset, index: str, choice, hybrid: dict | None) -> tuple[dict | None, list[str]]:
        """``--task both``: distil a cross-encoder from the hybrid stack just deployed (its embedder and weight are
        the teacher), register it, and put it behind that stack only when it beats it on the dev queries."""
        from searchtune.quickstart.rerank import reranker_verdict, train_distilled, with_reranker
        from searchtune.train.choose import BM25
        from searchtune.train.memory import return_freed_memory

        if choice.winner == BM25 or hybrid is None or self.served_embedder is None:
            line = "cross-encoder not trained: BM25 alone won the validation, and it is distilled from a hybrid ranker"
            self.say(line)
            return hybrid, [line]
        output = self.o.workdir / "reranker"
        try:
            with self.clock.stage("train cross-encoder"):
                record = train_distilled(self.o, client, split, index, output, self.say,
                                         embedder_spec=self.served_embedder, weight=choice.weight, store=self.store)
        except Exception as exc:  # noqa: BLE001 - the hybrid stack is deployed already; an extra model must not undo it
            line = f"cross-encoder not deployed: its training failed ({type(exc).__name__}: {str(exc)[:200]})"
            log.warning("%s", line)
            log.debug("cross-encoder training failed", exc_info=True)  # the traceback for --debug only
            self.say(line)
            return hybrid, [line]
        finally:
            return_freed_memory("training the cross-encoder")
        self.reranker_record = record
        wins, verdict = reranker_verdict(record)
        schedule = record.get("schedule") or {}
        lines = [verdict, f"cross-encoder distilled from {choice.winner}: {schedule.get('steps_done')} of "
                          f"{schedule.get('planned_steps')} planned steps in {record.get('train_seconds', 0):.0f}s"]
        if budget_cut_note(record):
            lines.append(f"cross-encoder: {budget_cut_note(record)}")
        for line in lines:
            self.say(line)
        name = f"{self.o.model_name}-reranker"
        with self.clock.stage("register + serve cross-encoder"):
            ref = self.publish(output, record, promote=wins, name=name)
            if not wins:
                return hybrid, lines
            endpoint = self.serve(ref, names=[name])
            self.urls["reranker endpoint"] = endpoint
        self.reranker_deployed = True
        return with_reranker(hybrid, f"{endpoint}{DASHSCOPE_RERANK_PATH}", name, record), lines

    def publish(self, model_dir: Path, record: dict, promote: bool = True, name: str | None = None) -> str:
        from searchtune.registry.registry import ModelRegistry

        name = name or self.o.model_name
        registry = ModelRegistry(self.store)
        final = (record.get("dev") or {}).get("final") or {}
        version = registry.register(name, str(model_dir),
                                    metrics={k: float(v) for k, v in final.items() if isinstance(v, (int, float))},
                                    description="quickstart")
        if not promote:
            self.say(f"registered {name} v{version}; not promoted to prod: another stack won the validation")
            return f"{name}@{version}"
        registry.promote(name, version, alias="prod")
        ref = f"{name}@prod"
        self.say(f"registered {name} v{version} and promoted it to prod")
        return ref

    def serve(self, ref: str, names: list[str] | None = None) -> str:
        """Serve ``ref``; ``names`` are the extra model names its requests may carry (the pipeline's model_id)."""
        return self.serve_together([(ref, names)])[0]

    def serve_together(self, models: list[tuple[str, list[str] | None]]) -> list[str]:
        """Start one server per (ref, extra names) at the same time and return their URLs once all are ready.

        Why together: a server's start is mostly single-threaded (imports, ONNX export, OpenVINO compile), so two
        of them on two cores take little longer than one. Every server that started is stopped on exit (unless
        ``--keep-running``), even when another one failed to start."""
        from concurrent.futures import ThreadPoolExecutor

        from searchtune.serve.process import start_server_process

        def start(ref: str, names: list[str] | None):
            env = {"SEARCHTUNE_STORE": self.store}
            if names:
                env["SEARCHTUNE_SERVE_MODEL_NAMES"] = ",".join(names)
            return start_server_process(ref, env=env, extra_args=["--max-length", str(self.o.max_length)])

        with ThreadPoolExecutor(max_workers=len(models)) as pool:
            futures = [pool.submit(start, ref, names) for ref, names in models]
        urls, failure = [], None
        for (ref, _), future in zip(models, futures):
            try:
                server = future.result()
            except Exception as exc:  # noqa: BLE001 - raised below, once the others are looked after
                failure = failure or exc
                continue
            if not self.o.keep_running:
                self.stack.callback(server.stop)
            self.memory.extra_pids.add(server.process.pid)
            self.urls["model endpoint"] = server.url
            self.say(f"model endpoint ready at {server.url} (serving {ref})")
            urls.append(server.url)
        if failure is not None:
            raise failure
        return urls

    def gateway(self, es_url: str, endpoint: str, fusion_weight: float | None, hybrid: dict | None = None) -> str:
        from searchtune.gateway.process import start_gateway_process

        gateway = start_gateway_process(es_url, extra_args=["--timeout", "30"],
                                        env={"SEARCHTUNE_GATEWAY_ADMIN_KEY": self.admin_key})
        if not self.o.keep_running:
            self.stack.callback(gateway.stop)
        self.memory.extra_pids.add(gateway.process.pid)
        # training reports the model's fusion weight; the gateway takes BM25's
        self.bm25_weight = None if fusion_weight is None else round(1.0 - float(fusion_weight), 4)
        body = hybrid or self._pipeline_body(endpoint)
        self.deployed_pipeline = body
        response = httpx.put(f"{gateway.url}/_search/pipeline/{self.o.pipeline}", json=body, timeout=30,
                             headers={ADMIN_KEY_HEADER: self.admin_key})
        response.raise_for_status()
        self.urls["gateway"] = gateway.url
        self.say(f"gateway at {gateway.url}; search pipeline '{self.o.pipeline}' created")
        return gateway.url

    def evaluate_through_gateway(self, gateway_url: str, dataset: Dataset, index: str):
        from searchtune.eval.pipeline_run import search_through_pipeline

        queries = dataset.split_queries(self.o.test_split)
        outcome = search_through_pipeline(gateway_url, index, self.o.pipeline, queries, fields=self.o.fields, size=100)
        if outcome.errors:
            raise RuntimeError(f"{len(outcome.errors)} searches through the gateway failed, e.g. "
                               f"{next(iter(outcome.errors.values()))}")
        result = evaluate(dataset.split_qrels(self.o.test_split), outcome.run)
        if outcome.fallbacks:
            log.warning("%d searches fell back to BM25 order (model endpoint errors)", outcome.fallbacks)
        return outcome.run, outcome.latencies_ms, result, outcome.fallbacks

    # ------------------------------------------------------------------ the run
    def run(self) -> QuickstartResult:
        from searchtune.data.loaders import load_dataset
        from searchtune.search.client import es_client

        with self.memory, self.stack:
            dataset = load_dataset(self.o.dataset)
            dataset = _subset(dataset, self.o.test_split, self.o.max_test_queries, self.o.seed)
            index = self.o.index or dataset.name
            with self.clock.stage("search node"):
                es_url = self.start_search()
            client = es_client(es_url)
            with self.clock.stage("index"):
                self.index_corpus(client, dataset, index)
            with self.clock.stage("BM25 baseline"):
                bm25_run, bm25_docs, bm25 = self.baseline(client, dataset, index)
            with self.clock.stage("data: validate, stage, split, mine"):
                split, triplets_path, data_stats = self.prepare_data(client, dataset, index)
            plan = self.plan_task(split, dataset)
            with self.clock.stage("train"):
                model_dir, record = self.train(client, split, index, triplets_path)
            final = (record.get("dev") or {}).get("final") or {}
            fusion_weight = final.get("dev_fusion_weight")
            choice, reranker_lines = None, []
            if self.o.trains_embedder:  # an embedder: BM25, zero-shot or tuned hybrid, whichever validates best
                with self.clock.stage("choose stack"):
                    choice = self.choose(client, split, index, model_dir, record)
                _record_validation(record, choice)
                endpoint, hybrid, fusion_weight = self.deploy_chosen(client, index, model_dir, record, choice)
                if self.o.task == "both":  # then a cross-encoder behind that stack, if it beats it on dev
                    hybrid, reranker_lines = self.add_reranker(client, split, index, choice, hybrid)
            else:  # zero-shot hybrid, then the distilled cross-encoder on its top 30 (quickstart/rerank.py)
                from searchtune.models import default_base_model
                from searchtune.quickstart.rerank import hybrid_rerank_pipeline

                with self.clock.stage("register + serve"):
                    endpoint, embed_endpoint = self.serve_together([(self.publish(model_dir, record), None),
                                                                    (default_base_model(), None)])
                    self.urls |= {"model endpoint": endpoint, "embedding endpoint": embed_endpoint}
                hybrid = hybrid_rerank_pipeline(embed_endpoint, f"{endpoint}{DASHSCOPE_RERANK_PATH}",
                                                self.o.model_name, record)
            with self.clock.stage("gateway"):
                gateway_url = self.gateway(es_url, endpoint, fusion_weight, hybrid)
            with self.clock.stage("evaluate through gateway"):
                tuned_run, latencies, tuned, fallbacks = self.evaluate_through_gateway(gateway_url, dataset, index)
            label = _system_label(self.o.model_name, choice, fusion_weight, reranked=self.reranker_deployed)
            systems = {"BM25": bm25, label: tuned}
            with self.clock.stage("report"):
                report_dir = self.o.workdir / "report"
                inputs = ReportInput(
                    title=f"searchtune quickstart: {dataset.name}", dataset=dataset.name, split=self.o.test_split,
                    systems=systems, examples=_examples(dataset, self.o.test_split, bm25_run, tuned_run, bm25_docs),
                    training_curve=_curve(record), training_info=_training_summary(record, data_stats),
                    latencies_ms=latencies, stage_seconds=dict(self.clock.seconds),
                    commands=self._commands(index, es_url, gateway_url),
                    warnings=[w for w in [budget_cut_note(record)] if w],
                    notes=[f"{fallbacks} of {len(latencies)} searches fell back to BM25 order" if fallbacks else
                           "no search fell back to BM25 order"],
                    deployment=[plan.reason, *(choice.lines() if choice else []), *reranker_lines],
                    deployment_info=(choice.to_dict() if choice else {}) | self._plan_info(plan))
                write_report(inputs, report_dir)
            self.memory.sample()
            if self.o.keep_running:
                self.stack.pop_all()
            result = QuickstartResult(report_dir=report_dir, systems=systems, stage_seconds=dict(self.clock.seconds),
                                      peak_memory_gib=0.0, urls=dict(self.urls),
                                      deployment=choice.selection.summary() if choice else None)
        result.peak_memory_gib = self.memory.peak_gib
        summary = json.loads((report_dir / "report.json").read_text())
        summary["peak_memory_gib"] = round(result.peak_memory_gib, 2)
        summary["stage_seconds"] = result.stage_seconds
        atomic_write_json(report_dir / "report.json", summary)
        return result

    def _pipeline_body(self, endpoint: str) -> dict:
        from searchtune.gateway.pipelines import neural_rerank_pipeline

        return neural_rerank_pipeline(self.o.model_name, f"{endpoint}{DASHSCOPE_RERANK_PATH}", self.o.rerank_top_k,
                                      bm25_weight=self.bm25_weight,
                                      headers={"Authorization": "Bearer $SEARCHTUNE_SECRET_BAILIAN_API_KEY"},
                                      description="Neural rerank via the fine-tuned searchtune model")

    def _pipeline_example(self) -> dict:
        """The deployed pipeline as the Reproduce commands serve it: the embedder on port 8080, the cross-encoder
        on 8081 (the run's own servers listen on random ports); weights, windows and headers as deployed."""
        if not self.o.trains_embedder:
            return self._pipeline_body("http://127.0.0.1:8080")
        if self.deployed_pipeline is None:  # the run stopped before its gateway: the stack's shape, default weight
            from searchtune.quickstart.hybrid import hybrid_pipeline

            return hybrid_pipeline(f"{self.o.model_name}@prod", "http://127.0.0.1:8080", 0.5)
        example = json.loads(json.dumps(self.deployed_pipeline))
        for processor in example.get("request_processors", []):
            for kind, spec in processor.items():
                port = RERANKER_EXAMPLE_PORT if kind == "neural_rerank" and self.reranker_deployed else 8080
                if isinstance(spec, dict) and spec.get("endpoint"):
                    spec["endpoint"] = str(httpx.URL(spec["endpoint"]).copy_with(host="127.0.0.1", port=port))
        return example

    def _embedder_serve_line(self) -> str:
        """The model server the example pipeline's first stage calls: the registered model, or (zero-shot hybrid
        won) the base model answering to the pipeline's ``model_id``."""
        served = self.served_embedder
        if not self.o.trains_embedder or served is None or "@" in served:
            return f"searchtune serve --model {self.o.model_name}@prod --port 8080"
        hybrid = next((p["hybrid"] for p in (self.deployed_pipeline or {}).get("request_processors", [])
                       if "hybrid" in p), {})
        names = f"SEARCHTUNE_SERVE_MODEL_NAMES={hybrid['model_id']} " if hybrid.get("model_id") else ""
        return f"{names}searchtune serve --model {served} --port 8080"

    def _commands(self, index: str, es_url: str, gateway_url: str) -> list[str]:
        ds = str(self.o.dataset)
        return [
            f"export SEARCHTUNE_STORE={self.store}",
            f"searchtune index {ds} --index {index} --es-url {es_url}",
            f"searchtune eval {ds} --index {index} --split {self.o.test_split} --es-url {es_url}",
            self._embedder_serve_line(),
            *([f"searchtune serve --model {self.o.model_name}-reranker@prod --port {RERANKER_EXAMPLE_PORT}"]
              if self.reranker_deployed else []),
            f"SEARCHTUNE_GATEWAY_ADMIN_KEY=$ADMIN_KEY searchtune gateway --es-url {es_url} --port 9201",
            f"searchtune vectors update --index {index} --model {self.o.model_name}@prod --es-url {es_url}"
            if self.o.trains_embedder else "# rerank pipeline: see docs/gateway.md",
            f"searchtune eval {ds} --index {index} --split {self.o.test_split} --es-url {es_url} "
            f"--hybrid {self.o.model_name}@prod --tune-fusion" if self.o.trains_embedder else
            f"searchtune eval {ds} --index {index} --split {self.o.test_split} --es-url {es_url} "
            f"--rerank {self.o.model_name}@prod --tune-fusion",
            f"curl -XPUT localhost:9201/_search/pipeline/{self.o.pipeline} -H 'content-type: application/json' "
            f"-H \"X-Searchtune-Admin-Key: $ADMIN_KEY\" -d '{json.dumps(self._pipeline_example())}'",
            f"searchtune eval {ds} --index {index} --split {self.o.test_split} --es-url http://127.0.0.1:9201 "
            f"--search-pipeline {self.o.pipeline} --json through-gateway.json",
            f"searchtune es connect --model-endpoint http://HOST:8080 --inference-id {self.o.model_name}  # native ES",
        ]


def _system_label(model_name: str, choice, weight: float | None, reranked: bool = False) -> str:
    """The deployed system's name in the report: what won the validation (BM25 through a plain pipeline, too)."""
    if choice is None:
        return f"{model_name} via gateway" + (f" (fused, w={weight:.2f})" if weight is not None else "")
    what = {"tuned hybrid": f"{model_name} hybrid", "zero-shot hybrid": "zero-shot hybrid (base model)"}
    name = what.get(choice.winner, "BM25 (plain pipeline)") + (" + cross-encoder" if reranked else "")
    return f"{name} via gateway" + (f" (w={weight:.2f})" if weight is not None else "")


def _record_validation(record: dict, choice) -> None:
    """The tuned model's figures from the stack choice, as its dev figures (the registry stores them with the
    version) when training did not score dev itself (an embedder in the quickstart: see quickstart/training.py)."""
    from searchtune.train.choose import TUNED

    dev = record.setdefault("dev", {})
    tuned = choice.selection.candidates.get(TUNED)
    if tuned is None or (dev.get("final") or {}).get("dev_ndcg@10") is not None:
        return
    dev["final"] = {"dev_hybrid_ndcg@10": float(tuned.mean), **{f"dev_hybrid_{k}": float(v)
                                                               for k, v in tuned.params.items()}}
    dev["scored_by"] = f"stack choice ({choice.selection.mode}, {choice.selection.queries} queries)"


def _curve(record: dict) -> list[tuple[float, float]]:
    points = []
    for entry in (record.get("dev") or {}).get("history", []) or []:
        step = entry.get("step")
        value = entry.get("fused_ndcg@10", entry.get("ndcg@10"))
        if step is not None and value is not None:
            points.append((float(step), float(value)))
    return points


def _training_summary(record: dict, data_stats: dict) -> dict:
    keep = ("base_model", "task", "train_seconds", "pairs_per_second", "num_examples", "hardware", "schedule",
            "throughput", "memory_plan")
    summary = {k: record[k] for k in keep if k in record}
    summary["config"] = {k: v for k, v in (record.get("config") or {}).items()
                         if k in ("loss", "learning_rate", "epochs", "batch_size", "max_length", "num_negatives")}
    summary["dev_final"] = (record.get("dev") or {}).get("final")
    summary["mining"] = {k: v for k, v in data_stats.items() if isinstance(v, (int, float, str))}
    return summary


def _examples(dataset: Dataset, split: str, base_run: dict, tuned_run: dict, docs: dict, count: int = 5) -> list[ExampleQuery]:
    """Queries where the two systems' top 5 differ most in relevant documents, best improvements first."""
    qrels = dataset.split_qrels(split)

    def top(run: dict, qid: str) -> list[tuple[str, str, int]]:
        ranked = sorted(run.get(qid, {}).items(), key=lambda kv: kv[1], reverse=True)[:5]
        out = []
        for did, _ in ranked:
            doc = docs.get(did) or dataset.corpus.get(did)
            out.append((did, (doc.title or doc.text[:80]) if doc else "", qrels.get(qid, {}).get(did, 0)))
        return out

    def gain(qid: str) -> int:
        return sum(g > 0 for *_, g in top(tuned_run, qid)) - sum(g > 0 for *_, g in top(base_run, qid))

    chosen = sorted((q for q in qrels if q in dataset.queries), key=gain, reverse=True)[:count]
    return [ExampleQuery(q, dataset.queries[q].text, top(base_run, q), top(tuned_run, q)) for q in chosen]
