"""Reporting's own store: the read models and, in the same transactions, each one's
position per topic-partition. SQLite by default, PostgreSQL in production.

Read models live in generations (`g<N>_docs`, `g<N>_tracking`, `g<N>_seen`). The live
consumer writes to the live generation; a rebuild fills a new one from offset 0 beside
it and swaps it in when it has caught up (blue/green). Applying a record takes a shared
lock on the control row and the swap an exclusive one, so no record is applied to the
old generation after the new one took over.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from eventsourcing.persistence import OperationalError

from contracts.envelope import CloudEvent
from contracts.service import Outcome
from reporting.documents import Doc, key_of, new_document, project

Record = tuple[CloudEvent, str, int, int]  # event, topic, partition, offset
CHUNK = 500  # rows per multi-row statement: far below SQLite's and PostgreSQL's parameter limits
# The canonical JSON of a document, as json.dumps(doc, sort_keys=True) writes it, without
# building a new encoder for every document.
_canonical = json.JSONEncoder(sort_keys=True).encode
# Documents of the generation being rebuilt kept decoded between its batches, some 10 KB
# each: with 3,000 trajectories open at a time (bench/) fewer than 5,000 are in use at
# once, and the least recently touched (closed ones, mostly) go first.
CACHE = 10_000
RECEIPTS = 200_000  # receipts a rebuild holds before writing them (some 30 MB)
Key = tuple[str, str]


class _Building:
    """The documents of the generation a rebuild fills, written back rather than through.

    Only that generation is kept, and only by the store that began it: nothing else writes
    it before it goes live, so no copy here can be older than the stored one. A document is
    written when it is pushed out of memory (the least recently touched first) and the
    rest, with the positions read so far, when the generation is flushed: before the swap,
    before it is dumped or superseded, and when the rebuild ends. Each document is so
    encoded and written about once instead of in every batch that touches it."""

    def __init__(self, generation: int, *, limit: int, complete: bool = True,
                 positions: bool = True) -> None:
        self.generation, self.limit = generation, limit
        self.docs: dict[Key, Doc] = {}  # least recently touched first
        self.dirty: set[Key] = set()  # changed since last written
        self.evicted: set[Key] = set()  # written and let go: to be read back when touched
        # Whether only this store wrote the generation's documents so far: then one neither
        # kept nor evicted is new, and only the evicted are read back.
        self.complete = complete
        # Read so far, written at a flush; not by one of several filling a generation
        # together (each reads every partition): the rebuild writes those when all are done.
        self.tracks_positions = positions
        self.positions: dict[tuple[str, int], int] = {}
        # Receipts not yet written: written sorted, many at a time, so a rebuild does not
        # rewrite the receipts' pages in every batch (random ids touch nearly all of them).
        self.receipts: set[tuple[str, str]] = set()

    def stored(self, keys: set[Key]) -> set[Key]:
        """Which of `keys`, not kept here, may be in the store."""
        return keys & self.evicted if self.complete else keys

    def keep(self, docs: dict[Key, Doc]) -> dict[Key, Doc]:
        """Keeps the documents a batch touched; returns the changed ones pushed out, which
        must be written in the batch's transaction."""
        for key, doc in docs.items():  # to the end: the most recently touched
            self.docs.pop(key, None)
            self.docs[key] = doc
        self.dirty.update(docs)
        out: dict[Key, Doc] = {}
        while len(self.docs) > self.limit:
            key = next(iter(self.docs))
            doc = self.docs.pop(key)
            self.evicted.add(key)
            if key in self.dirty:
                self.dirty.discard(key)
                out[key] = doc
        return out

    def take_dirty(self) -> dict[Key, Doc]:
        dirty = {key: self.docs[key] for key in self.dirty}
        self.dirty.clear()
        return dirty


class RebuildAbandoned(RuntimeError):
    """A batch of this rebuild failed after folding into documents not yet written: the
    generation can no longer be completed, and a new rebuild must begin."""


class ReportingStore:
    """The inbox target of reporting: applies every event to the read models once."""

    group = "reporting"
    cache_limit = CACHE  # documents of the rebuilding generation kept decoded

    def __init__(self, database_url: str) -> None:
        self.url = database_url  # for the processes of a parallel rebuild (never logged: it may hold a password)
        self._lock = threading.Lock()  # one connection, used from worker threads in turn
        self._building: _Building | None = None  # the rebuild this store is filling
        self._abandoned: set[int] = set()  # generations whose rebuild lost unwritten documents
        self._flushing: int | None = None  # the generation written back in this transaction
        if database_url.startswith("sqlite:///"):
            path = unquote(database_url.removeprefix("sqlite:///"))
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._conn: Any = sqlite3.connect(path, check_same_thread=False, isolation_level=None,
                                              timeout=30)
            self._conn.execute("PRAGMA journal_mode=WAL")
            # 64 MiB of page cache instead of 2: the receipts' and documents' indexes of a
            # million events are far larger, and every miss is a read from the OS.
            self._conn.execute("PRAGMA cache_size=-65536")
            # WAL's NORMAL: a commit is not synced at once, and a power cut may lose the last
            # ones, never consistency. The read models are derived and their positions are
            # in the same transactions, so what is lost is read from Kafka again.
            self._conn.execute("PRAGMA synchronous=NORMAL")
            # Pages read through a mapping of the file: a rebuild's processes each invalidate
            # the others' page caches with every commit, and reading back is then no copy.
            self._conn.execute("PRAGMA mmap_size=1073741824")
            self.postgres = False
        elif database_url.startswith(("postgresql://", "postgres://")):
            import psycopg  # only needed in production

            self._url = database_url
            self._conn = psycopg.connect(database_url, autocommit=True)
            self.postgres = True
        else:
            raise ValueError("reporting needs an sqlite:/// or postgresql:// URL")
        with self._transaction() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS reporting_control ("
                        "name TEXT PRIMARY KEY, value INTEGER NOT NULL)")
            cur.execute(self._sql("INSERT INTO reporting_control (name, value) VALUES ('live', 1) "
                                  "ON CONFLICT (name) DO NOTHING"))
            self._create_generation(cur, self._live(cur, lock=False))
            # The incarnations of each topic read, numbered as met (contracts.incarnation).
            cur.execute("CREATE TABLE IF NOT EXISTS reporting_incarnations (topic TEXT NOT NULL, "
                        "topic_id TEXT NOT NULL, ordinal INTEGER NOT NULL, PRIMARY KEY (topic, topic_id), "
                        "UNIQUE (topic, ordinal))")

    # --- plumbing ------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._lock, self._store_away_is_transient():
            if self.postgres and self._conn.closed:
                # The server restarted since: a closed connection never opens again by itself.
                import psycopg

                self._conn = psycopg.connect(self._url, autocommit=True, connect_timeout=10)
            cur = self._conn.cursor()
            cur.execute("BEGIN" if self.postgres else "BEGIN IMMEDIATE")
            try:
                yield cur
                cur.execute("COMMIT")
            except BaseException:
                with suppress(Exception):  # a broken connection cannot roll back, nor needs to
                    cur.execute("ROLLBACK")
                if self._flushing is not None:  # its documents were let go, and not written
                    self._abandoned.add(self._flushing)
                raise
            finally:
                self._flushing = None
                cur.close()

    @contextmanager
    def _store_away_is_transient(self) -> Iterator[None]:
        """PostgreSQL away raises the store-unavailable error every service raises, so the
        inbox waits and retries (never dead-letters) and the API answers 503."""
        if not self.postgres:
            yield
            return
        import psycopg

        try:
            yield
        except (psycopg.OperationalError, psycopg.InterfaceError) as error:
            raise OperationalError(f"reporting's store is unavailable: {type(error).__name__}") from error

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self.postgres else statement

    def _live(self, cur: Any, *, lock: str | bool = "share") -> int:
        suffix = {"share": " FOR SHARE", "update": " FOR UPDATE"}.get(lock, "") if self.postgres else ""
        cur.execute("SELECT value FROM reporting_control WHERE name = 'live'" + suffix)
        return int(cur.fetchone()[0])

    def _create_generation(self, cur: Any, generation: int) -> None:
        g = f"g{generation}"
        # SQLite keeps the receipts in their key's own B-tree, not beside a rowid table and
        # an index on it: one insert per event instead of two.
        clustered = "" if self.postgres else " WITHOUT ROWID"
        cur.execute(f"CREATE TABLE IF NOT EXISTS {g}_tracking (topic TEXT NOT NULL, "
                    "partition INTEGER NOT NULL, position BIGINT NOT NULL, PRIMARY KEY (topic, partition))")
        # (source, id) of every event applied: a relay's republished event counts once.
        cur.execute(f"CREATE TABLE IF NOT EXISTS {g}_seen (source TEXT NOT NULL, id TEXT NOT NULL, "
                    f"PRIMARY KEY (source, id)){clustered}")
        cur.execute(f"CREATE TABLE IF NOT EXISTS {g}_docs (kind TEXT NOT NULL, id TEXT NOT NULL, "
                    "municipality TEXT, data TEXT NOT NULL, PRIMARY KEY (kind, id))")
        cur.execute(f"CREATE INDEX IF NOT EXISTS {g}_docs_municipality ON {g}_docs (kind, municipality)")

    # --- the live path: one record at a time -------------------------------------------

    def position(self, topic: str, partition: int) -> int | None:
        with self._transaction() as cur:
            return self._position(cur, self._live(cur), topic, partition)

    def _position(self, cur: Any, generation: int, topic: str, partition: int) -> int | None:
        cur.execute(self._sql(f"SELECT position FROM g{generation}_tracking "
                              "WHERE topic = ? AND partition = ?"), (topic, partition))
        row = cur.fetchone()
        return None if row is None else int(row[0])

    def incarnation(self, topic: str, topic_id: str) -> int:
        """The number of this incarnation of `topic` among those read; a new one is next."""
        select = self._sql("SELECT ordinal FROM reporting_incarnations WHERE topic = ? AND topic_id = ?")
        while True:
            with self._transaction() as cur:
                cur.execute(select, (topic, topic_id))
                row = cur.fetchone()
                if row is not None:
                    return int(row[0])
                cur.execute(self._sql("INSERT INTO reporting_incarnations (topic, topic_id, ordinal) "
                                      "SELECT ?, ?, COALESCE(MAX(ordinal), 0) + 1 FROM reporting_incarnations "
                                      "WHERE topic = ? ON CONFLICT DO NOTHING"), (topic, topic_id, topic))
                cur.execute(select, (topic, topic_id))
                row = cur.fetchone()
                if row is not None:  # else another process numbered another one first: again
                    return int(row[0])

    def apply(self, cloud_event: CloudEvent, topic: str, partition: int, offset: int) -> Outcome:
        with self._transaction() as cur:
            generation = self._live(cur)
            position = self._position(cur, generation, topic, partition)
            if position is not None and position >= offset:
                return Outcome.SEEN_OFFSET
            outcome = self._apply(cur, generation, [(cloud_event, topic, partition, offset)])[0]
        return outcome

    # --- the rebuild path: batches into a generation of its own ------------------------

    def begin_rebuild(self) -> int:
        """A new, empty generation beside the live one; returns its number."""
        with self._transaction() as cur:
            self._flush(cur)  # a rebuild this store was filling may go on, from the store
            cur.execute("SELECT COALESCE(MAX(value), 1) FROM reporting_control")
            generation = int(cur.fetchone()[0]) + 1
            for table in ("docs", "tracking", "seen"):
                cur.execute(f"DROP TABLE IF EXISTS g{generation}_{table}")
            self._create_generation(cur, generation)
            cur.execute(self._sql("INSERT INTO reporting_control (name, value) VALUES ('building', ?) "
                                  "ON CONFLICT (name) DO UPDATE SET value = excluded.value"), (generation,))
            self._building = _Building(generation, limit=self.cache_limit)
        return generation

    def join_rebuild(self, generation: int, *, documents_only: bool = False) -> None:
        """Fills a generation another store began (a rebuild in several processes, each
        holding its own documents): `documents_only` for a share of the documents whose
        positions the rebuild writes once every share is done; otherwise every document
        not kept here is read back from the store."""
        building = _Building(generation, limit=self.cache_limit, complete=documents_only,
                             positions=not documents_only)
        with self._transaction() as cur:
            self._flush(cur)
            if not documents_only:
                cur.execute(f"SELECT topic, partition, position FROM g{generation}_tracking")
                building.positions = {(t, int(p)): int(o) for t, p, o in cur.fetchall()}
        self._building = building

    def set_positions(self, generation: int, positions: dict[tuple[str, int], int]) -> None:
        """Records that `generation` has applied every record up to these offsets."""
        with self._transaction() as cur:
            self._write(cur, f"g{generation}", {}, positions)

    def forget_rebuild(self) -> None:
        """Writes what the rebuild holds in memory and lets it go: the generation is then
        complete in the store up to the positions it read."""
        if self._building is None:
            return
        with self._transaction() as cur:
            self._flush(cur)

    def apply_batch(self, generation: int, records: Sequence[Record]) -> int:
        """Applies records in order in one transaction; returns how many took effect."""
        if generation in self._abandoned:
            raise RebuildAbandoned(f"generation {generation} lost documents when a batch failed; "
                                   "begin a new rebuild")
        building = self._building if self._building and self._building.generation == generation else None
        try:
            with self._transaction() as cur:
                if building is not None:
                    positions = building.positions
                else:  # one read of every position, not one per record
                    cur.execute(f"SELECT topic, partition, position FROM g{generation}_tracking")
                    positions = {(t, int(p)): int(o) for t, p, o in cur.fetchall()}
                # Checked against the positions as they were before the batch, as each
                # record's own SELECT did.
                fresh = [r for r in records if positions.get((r[1], r[2]), -1) < r[3]]
                outcomes = self._apply(cur, generation, fresh, building)
        except BaseException:
            if building is not None:
                # Rolled back, but its documents were folded in place and those not yet
                # written cannot be had again: this generation cannot be finished.
                self._abandoned.add(generation)
                self._building = None
            raise
        return sum(o is Outcome.APPLIED for o in outcomes)

    def _flush(self, cur: Any, generation: int | None = None) -> None:
        """Writes the rebuilding generation's documents and positions held in memory (all
        of it, or only if it is `generation`) and lets them go."""
        building = self._building
        if building is None or generation not in (None, building.generation):
            return
        self._flushing = building.generation
        g = f"g{building.generation}"
        self._write_receipts(cur, g, building)
        self._write(cur, g, building.take_dirty(), building.positions if building.tracks_positions else {})
        self._building = None

    def lag(self, generation: int) -> dict[tuple[str, int], int]:
        """How far `generation` is behind the live one, per topic-partition (0 = level)."""
        with self._transaction() as cur:
            return self._lag(cur, generation, self._live(cur))

    def _lag(self, cur: Any, generation: int, live: int) -> dict[tuple[str, int], int]:
        self._flush(cur, generation)
        cur.execute(f"SELECT topic, partition, position FROM g{live}_tracking")
        live_positions = {(t, int(p)): int(o) for t, p, o in cur.fetchall()}
        cur.execute(f"SELECT topic, partition, position FROM g{generation}_tracking")
        built = {(t, int(p)): int(o) for t, p, o in cur.fetchall()}
        return {tp: o - built.get(tp, -1) for tp, o in live_positions.items() if o > built.get(tp, -1)}

    def swap(self, generation: int) -> bool:
        """Makes `generation` live if it has caught up; drops the old one. Atomic."""
        if generation in self._abandoned:
            raise RebuildAbandoned(f"generation {generation} lost documents when a batch failed")
        with self._transaction() as cur:
            live = self._live(cur, lock="update")
            if self._lag(cur, generation, live):  # written back first, in this transaction
                return False
            cur.execute(self._sql("UPDATE reporting_control SET value = ? WHERE name = 'live'"), (generation,))
            cur.execute("DELETE FROM reporting_control WHERE name = 'building'")
            for table in ("docs", "tracking", "seen"):
                cur.execute(f"DROP TABLE IF EXISTS g{live}_{table}")
        return True

    # --- the projection, inside a transaction ------------------------------------------

    def _apply(self, cur: Any, generation: int, records: Sequence[Record],
               building: _Building | None = None) -> list[Outcome]:
        """Folds the records into their documents. A handful of statements per batch,
        however large: the receipts, the documents and the positions each in bulk. A
        rebuild's documents stay in `building` and only those it lets go are written."""
        g = f"g{generation}"
        new = self._receive(cur, g, [(r[0].attributes.source, r[0].attributes.id) for r in records], building)
        keys = [key_of(r[0].data, r[0].attributes) if first else None
                for r, first in zip(records, new, strict=True)]
        wanted = {key for key in keys if key is not None}
        if building is None:
            docs = self._load_many(cur, g, wanted)
        else:
            docs = {key: building.docs[key] for key in wanted if key in building.docs}
            docs.update(self._load_many(cur, g, building.stored(wanted - docs.keys())))
        outcomes: list[Outcome] = []
        positions: dict[tuple[str, int], int] = {} if building is None else building.positions
        for (cloud_event, topic, partition, offset), key in zip(records, keys, strict=True):
            positions[(topic, partition)] = offset
            if key is None:
                outcomes.append(Outcome.SEEN_EVENT)
                continue
            attrs = cloud_event.attributes
            doc = docs.get(key) or docs.setdefault(key, new_document(*key))
            project(doc, cloud_event.data, attrs)
            # Where the event is on Kafka: an audit replay reads just these records.
            doc.setdefault("log", {})[f"{topic}/{partition}/{offset}"] = attrs.type
            outcomes.append(Outcome.APPLIED)
        if building is None:
            self._write(cur, g, docs, positions)
        else:
            self._write(cur, g, building.keep(docs), {})
        return outcomes

    def _write(self, cur: Any, g: str, docs: dict[Key, Doc], positions: dict[tuple[str, int], int]) -> None:
        if docs:
            cur.executemany(self._sql(f"INSERT INTO {g}_docs (kind, id, municipality, data) VALUES (?, ?, ?, ?) "
                                      "ON CONFLICT (kind, id) DO UPDATE SET municipality = excluded.municipality, "
                                      "data = excluded.data"),
                            [(kind, id_, doc["municipality"], _canonical(doc)) for (kind, id_), doc in docs.items()])
        if positions:
            cur.executemany(self._sql(f"INSERT INTO {g}_tracking (topic, partition, position) VALUES (?, ?, ?) "
                                      "ON CONFLICT (topic, partition) DO UPDATE SET position = excluded.position"),
                            [(topic, partition, offset) for (topic, partition), offset in positions.items()])

    def _receive(self, cur: Any, g: str, events: Sequence[tuple[str, str]],
                 building: _Building | None = None) -> list[bool]:
        """Records the receipt of each (source, id) and tells which are new. Each receipt is
        an INSERT ... ON CONFLICT DO NOTHING, many rows to a statement, and RETURNING names
        the rows it inserted: atomic per receipt, as one statement per event was. Within a
        batch the first of the same event wins. A rebuild looks its receipts up instead and
        holds the new ones, which it writes later (see _Building)."""
        if building is not None:
            return self._receive_later(cur, g, events, building)
        inserted: set[tuple[str, str]] = set()
        unique = list(dict.fromkeys(events))
        for start in range(0, len(unique), CHUNK):
            chunk = unique[start:start + CHUNK]
            cur.execute(self._sql(f"INSERT INTO {g}_seen (source, id) VALUES {', '.join(['(?, ?)'] * len(chunk))} "
                                  "ON CONFLICT DO NOTHING RETURNING source, id"),
                        [value for pair in chunk for value in pair])
            inserted.update((source, id_) for source, id_ in cur.fetchall())
        new = []
        for event in events:
            new.append(event in inserted)
            inserted.discard(event)  # the same event again in this batch is seen
        return new

    def _receive_later(self, cur: Any, g: str, events: Sequence[tuple[str, str]],
                       building: _Building) -> list[bool]:
        unknown = [event for event in dict.fromkeys(events) if event not in building.receipts]
        inserted = set(unknown) - self._receipts_among(cur, g, unknown)
        building.receipts |= inserted
        if len(building.receipts) >= RECEIPTS:
            self._write_receipts(cur, g, building)
        new = []
        for event in events:
            new.append(event in inserted)
            inserted.discard(event)  # the same event again in this batch is seen
        return new

    def _receipts_among(self, cur: Any, g: str, events: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of `events` have a stored receipt: one SELECT per source and chunk of ids,
        on the receipts' key (a source publishes many events, there are few sources)."""
        found: set[tuple[str, str]] = set()
        by_source: dict[str, list[str]] = {}
        for source, id_ in events:
            by_source.setdefault(source, []).append(id_)
        for source, ids in by_source.items():
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start:start + CHUNK]
                cur.execute(self._sql(f"SELECT id FROM {g}_seen WHERE source = ? AND id IN "
                                      f"({', '.join('?' * len(chunk))})"), (source, *chunk))
                found.update((source, id_) for (id_,) in cur.fetchall())
        return found

    def _write_receipts(self, cur: Any, g: str, building: _Building) -> None:
        if building.receipts:  # in key order: each page of the receipts' B-tree written once
            cur.executemany(self._sql(f"INSERT INTO {g}_seen (source, id) VALUES (?, ?) ON CONFLICT DO NOTHING"),
                            sorted(building.receipts))
            building.receipts.clear()

    def _load_many(self, cur: Any, g: str, keys: set[tuple[str, str]]) -> dict[tuple[str, str], Doc]:
        """The stored documents among `keys`, in one SELECT per kind and chunk."""
        docs: dict[tuple[str, str], Doc] = {}
        for kind in sorted({kind for kind, _ in keys}):
            ids = sorted(id_ for k, id_ in keys if k == kind)
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start:start + CHUNK]
                cur.execute(self._sql(f"SELECT id, data FROM {g}_docs WHERE kind = ? AND id IN "
                                      f"({', '.join('?' * len(chunk))})"), (kind, *chunk))
                docs.update(((kind, id_), json.loads(data)) for id_, data in cur.fetchall())
        return docs

    def _load(self, cur: Any, g: str, key: tuple[str, str]) -> Doc | None:
        cur.execute(self._sql(f"SELECT data FROM {g}_docs WHERE kind = ? AND id = ?"), key)
        row = cur.fetchone()
        return None if row is None else json.loads(row[0])

    # --- reading -------------------------------------------------------------------------

    def documents(self, kind: str, municipalities: Iterable[str] | None = None) -> list[Doc]:
        """The documents of one kind, for the given municipalities (None: all)."""
        with self._transaction() as cur:
            g = f"g{self._live(cur, lock=False)}"
            if municipalities is None:
                cur.execute(self._sql(f"SELECT data FROM {g}_docs WHERE kind = ? ORDER BY id"), (kind,))
            else:
                wanted = sorted(municipalities)
                marks = ", ".join("?" * len(wanted)) or "NULL"
                cur.execute(self._sql(f"SELECT data FROM {g}_docs WHERE kind = ? AND municipality IN "
                                      f"({marks}) ORDER BY id"), (kind, *wanted))
            return [json.loads(row[0]) for row in cur.fetchall()]

    def dump(self, generation: int | None = None) -> str:
        """Every document of a generation, canonically: for byte-for-byte comparisons."""
        with self._transaction() as cur:
            generation = generation or self._live(cur, lock=False)
            self._flush(cur, generation)
            cur.execute(f"SELECT data FROM g{generation}_docs ORDER BY kind, id")
            return "\n".join(row[0] for row in cur.fetchall())

    def document(self, kind: str, id_: str) -> Doc | None:
        with self._transaction() as cur:
            return self._load(cur, f"g{self._live(cur, lock=False)}", (kind, id_))

    def log_access(self, who: str, trajectory_id: str, action: str, at: str, trace_id: str | None = None) -> None:
        """The access log: who looked at which trajectory, auditors included. Kept apart
        from the read models, so a rebuild never touches it; the trace id links an entry to
        the services' processing logs of the same read (which name no one)."""
        with self._transaction() as cur:
            self._access_table(cur)
            cur.execute(self._sql("INSERT INTO access_log (at, who, trajectory_id, action, trace_id) "
                                  "VALUES (?, ?, ?, ?, ?)"), (at, who, trajectory_id, action, trace_id))

    def access_log(self, trajectory_id: str | None = None) -> list[dict[str, str | None]]:
        columns = ("at", "who", "trajectory_id", "action", "trace_id")
        with self._transaction() as cur:
            self._access_table(cur)
            if trajectory_id:
                cur.execute(self._sql(f"SELECT {', '.join(columns)} FROM access_log "
                                      "WHERE trajectory_id = ? ORDER BY at"), (trajectory_id,))
            else:
                cur.execute(f"SELECT {', '.join(columns)} FROM access_log ORDER BY at")
            return [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]

    def _access_table(self, cur: Any) -> None:
        cur.execute("CREATE TABLE IF NOT EXISTS access_log (at TEXT NOT NULL, who TEXT NOT NULL, "
                    "trajectory_id TEXT NOT NULL, action TEXT NOT NULL, trace_id TEXT)")
        # An access log from before trace ids keeps its entries and gains the column.
        if self.postgres:
            cur.execute("ALTER TABLE access_log ADD COLUMN IF NOT EXISTS trace_id TEXT")
        elif "trace_id" not in {row[1] for row in cur.execute("PRAGMA table_info(access_log)").fetchall()}:
            cur.execute("ALTER TABLE access_log ADD COLUMN trace_id TEXT")

    def live_generation(self) -> int:
        with self._transaction() as cur:
            return self._live(cur, lock=False)

    def event_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for kind in ("trajectory", "offer"):
            for doc in self.documents(kind):
                for type_, n in doc["types"].items():
                    counts[type_] = counts.get(type_, 0) + n
        return dict(sorted(counts.items()))

    def close(self) -> None:
        with self._lock:
            self._conn.close()
