"""The co-creation service: operations on takes, recorded in a TakeStore, ranked by taste.

The gRPC servicer calls these methods; they speak domain types (MusicSpec, Score, Take) and
raise SpecError (INVALID_ARGUMENT) or NotFound (NOT_FOUND). Each method that makes music
records exactly one take, in one transaction, naming its parent and the operation.

Replicas: nothing here lives only in this engine's memory. Takes, verdicts and the taste (fitted
from the stored verdicts on each request) come from the store, so any replica can answer any
request. A take-making call may carry the client's ``request_id``: a retry with an id already
recorded in the session gets the take the first attempt made, and makes none.
"""
from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from functools import lru_cache

from symusic import Score

from engine.compose import operations as ops
from engine.config import ADD_MAX_PARTS, PARTS_MAX, REASON_MAX_CHARS, SEED_MAX, TAKE_MIDI_MAX_BYTES
from engine.errors import SpecError
from engine.music.checks import check
from engine.music.midi import score_to_smf, smf_to_score
from engine.music.spec import MusicSpec
from engine.serving.convert import spec_from_pb, spec_to_pb
from engine.sessions import taste as taste_model
from engine.sessions.store import NotFound, Take, TakeStore, new_take_id
from protos.cadenza.v1 import engine_pb2 as pb

SESSION_MAX_CHARS = 200
log = logging.getLogger("cadenza.cocreate")


@lru_cache(maxsize=1)
def model_version() -> str:
    """The generator checkpoint's name and training steps, recorded with every take."""
    from engine.model.generator import default_checkpoint

    path = default_checkpoint()
    try:
        from engine.model.generator import load

        record = load(path).record
        return f"{path.name}@{record.get('steps', '?')}steps"
    except Exception:  # the take is still worth keeping without the model's name
        return path.name


def check_session(name: str) -> str:
    name = name.strip()
    if not name:
        raise SpecError("session", "is empty; name the session (the CLI defaults to the current folder's name)")
    if len(name) > SESSION_MAX_CHARS:
        raise SpecError("session", f"is {len(name)} characters; at most {SESSION_MAX_CHARS}")
    return name


def _seed(seed: int | None) -> int:
    if seed is None:
        return secrets.randbelow(2**31)
    check("seed", seed)
    return seed


class CoCreation:
    """Sessions of takes over one store."""
    def __init__(self, store: TakeStore) -> None:
        self.store = store
        # The model's likelihood of a take costs a forward pass (tens of ms on a busy CPU): it is
        # computed after the take is recorded, off the request's path, and merged into its features.
        # A short-lived thread per take, so an engine that records nothing runs no extra thread.
        self._pending: list[threading.Thread] = []

    def _likelihood(self, take_id: str, spec: MusicSpec, score: Score) -> None:
        try:
            self.store.update_features(take_id, {"likelihood": _model_likelihood(score, spec)})
        except Exception:  # the store closed under us at shutdown: taste() computes it when it is needed
            log.debug("no likelihood stored for take %s", take_id, exc_info=True)

    def _with_likelihoods(self, session: str, verdicts: list[dict]) -> None:
        """Give every verdict's take its likelihood, computing now any the background thread has not
        stored yet (a verdict right after the take, or the replica that made it was killed).

        Without this the taste fitted from the same verdicts depended on timing: the feature was
        there or not, so the weights, and with them the draft a Generate or Vary keeps, differed
        between replicas and runs."""
        known: dict[str, float | None] = {}
        for v in verdicts:
            if "likelihood" in v["features"]:
                known.setdefault(v["take"], v["features"]["likelihood"])
        for v in verdicts:
            if "likelihood" in v["features"]:
                continue
            if v["take"] not in known:
                _, spec, score = self.load(session, v["take"])
                known[v["take"]] = _model_likelihood(score, spec)
                self.store.update_features(v["take"], {"likelihood": known[v["take"]]})
            v["features"]["likelihood"] = known[v["take"]]

    def settle(self) -> None:
        """Wait until every recorded take has its likelihood (tests, benchmarks)."""
        for thread in list(self._pending):
            thread.join()

    # -- recording -------------------------------------------------------------------------
    def record(self, session: str, parent: str | None, operation: str, params: dict, spec: MusicSpec,
               score: Score, request_id: str | None = None) -> Take:
        """Store the take; when a racing attempt of the same request stored one first, that one is returned."""
        return self._record(session, parent, operation, params, spec, score, request_id)[0]

    def _record(self, session: str, parent: str | None, operation: str, params: dict, spec: MusicSpec,
                score: Score, request_id: str | None) -> tuple[Take, bool]:
        """``record``, also saying whether this call made the take (False: an earlier attempt had)."""
        midi = score_to_smf(score)
        if len(midi) > TAKE_MIDI_MAX_BYTES:  # it could never be sent back (GetTake, export)
            raise SpecError("midi", f"the take would be {len(midi)} bytes of MIDI; at most {TAKE_MIDI_MAX_BYTES} "
                                    "are stored (send a shorter clip or fewer parts)")
        feats = taste_model.features(score, spec.meter.quarters_per_bar)
        take = Take(id=new_take_id(), session=check_session(session), parent=parent, operation=operation,
                    params=params, spec=spec_to_pb(spec).SerializeToString(), seed=spec.seed,
                    model_version=model_version(), midi=midi, created=time.time(),
                    features=feats, request_id=request_id or None)
        stored = self.store.add(take)
        if stored.id != take.id:
            log.info("request %s already made take %s; %s not recorded", request_id, stored.id, take.id)
            return stored, False
        # scored as stored (the MIDI read back), as taste() scores a take whose likelihood it finds missing
        thread = threading.Thread(target=self._likelihood, args=(take.id, spec, smf_to_score(midi)),
                                  name="take-likelihood", daemon=True)
        thread.start()
        self._pending = [t for t in self._pending if t.is_alive()] + [thread]
        return take, True

    def replayed(self, session: str, request_id: str | None) -> Take | None:
        """The take an earlier attempt of this request made in the session, or None (also with no id)."""
        if not request_id:
            return None
        return self.store.by_request(check_session(session), request_id)

    def find(self, session: str, ref: str, any_session: bool = False) -> Take:
        """The take ``ref`` names (an id, a unique start of one, or ``last``); see TakeStore.find."""
        if not ref:
            raise SpecError("take", "is empty; name a take id, the start of one, or 'last' (see `cadenza history`)")
        return self.store.find(check_session(session), ref, any_session)

    def load(self, session: str, take_id: str) -> tuple[Take, MusicSpec, Score]:
        if not take_id:
            raise SpecError("take", "is empty; name a take id (see `cadenza history`)")
        take = self.store.get(check_session(session), take_id)

        return take, spec_from_pb(pb.MusicSpec.FromString(take.spec)), smf_to_score(take.midi)

    def taste(self, session: str) -> taste_model.Taste:
        """The session's taste, fitted afresh from its stored verdicts (no state kept here): the same verdicts
        give the same taste on every replica, whenever it is asked."""
        verdicts = self.store.verdicts(session)
        self._with_likelihoods(session, verdicts)
        parents = {}
        for v in verdicts:
            if v["parent"]:
                parents[v["take"]] = next((p for p in reversed(verdicts) if p["take"] == v["parent"]), None)
        return taste_model.fit(verdicts, {k: v for k, v in parents.items() if v})

    def _draws(self, session: str, candidates: int) -> int:
        """Drafts to draw: with no verdicts in the session yet a ranking knows nothing, so one."""
        wanted = _candidates(candidates)
        if candidates == 0:
            try:
                if not self.store.verdicts(session):
                    return 1
            except NotFound:
                return 1
        return wanted

    def _best(self, session: str, drafts: list[tuple[MusicSpec, Score]],
              likelihood: bool = False) -> tuple[MusicSpec, Score]:
        """The draft the session's taste ranks first (the first draft when it knows nothing).

        ``likelihood``: score each draft with the model too (worth it when drafts take longer to
        make than that, as composed clips do; variations rank without it, the feature left neutral).
        """
        if len(drafts) == 1:
            return drafts[0]
        try:
            taste = self.taste(session)
        except NotFound:
            return drafts[0]
        order = taste.rank([self._features(sp, s, likelihood) for sp, s in drafts])
        return drafts[order[0]]

    @staticmethod
    def _features(spec: MusicSpec, score: Score, likelihood: bool) -> dict[str, float]:
        feats = taste_model.features(score, spec.meter.quarters_per_bar)
        value = taste_model.model_likelihood(score, spec) if likelihood else None
        if value is not None:
            feats["likelihood"] = value
        return feats

    # -- operations ------------------------------------------------------------------------
    def generate(self, session: str, spec: MusicSpec, compose: Callable[[MusicSpec], Score],
                 candidates: int = taste_model.DEFAULT_CANDIDATES,
                 request_id: str | None = None) -> tuple[Take, MusicSpec]:
        """Draw ``candidates`` clips (seed, seed+1, ...) and record the one the taste ranks first."""
        session = check_session(session)
        if seen := self.replayed(session, request_id):
            return seen, _spec_of(seen)
        drafts = []
        for k in range(self._draws(session, candidates)):
            draft_spec = replace(spec, seed=(spec.seed + k) % (SEED_MAX + 1))
            drafts.append((draft_spec, compose(draft_spec)))
        best_spec, best_score = self._best(session, drafts, likelihood=True)
        take, made = self._record(session, None, "generate", {"prompt": spec.prompt, "candidates": len(drafts)},
                                  best_spec, best_score, request_id)
        return take, best_spec if made else _spec_of(take)

    def vary(self, session: str, take_id: str, parts: list[str], amount: float | None, seed: int | None,
             candidates: int = taste_model.DEFAULT_CANDIDATES, request_id: str | None = None) -> Take:
        if seen := self.replayed(session, request_id):
            return seen
        parent, spec, score = self.load(session, take_id)
        amount = 0.5 if amount is None else amount
        seed = _seed(seed)
        parts = ops.part_names(spec, parts) if parts else [p.name for p in spec.parts]
        drafts = [(replace(spec, seed=seed + k), ops.vary(spec, score, parts, amount, seed + k))
                  for k in range(self._draws(session, candidates))]
        best_spec, best = self._best(session, drafts)
        return self.record(session, parent.id, "vary", {"parts": parts, "amount": amount, "seed": best_spec.seed},
                           best_spec, best, request_id)

    def infill(self, session: str, take_id: str, part: str, first: int, last: int, seed: int | None,
               request_id: str | None = None) -> Take:
        if seen := self.replayed(session, request_id):
            return seen
        parent, spec, score = self.load(session, take_id)
        seed = _seed(seed)
        part = ops.part_names(spec, [part])[0]
        out = ops.infill(spec, score, part, first, last, seed)
        return self.record(session, parent.id, "infill", {"part": part, "bars": [first, last], "seed": seed},
                           replace(spec, seed=seed), out, request_id)

    def extend(self, session: str, take_id: str, midi: bytes, bars: int, seed: int | None,
               base: Callable[[], MusicSpec], played: bytes = b"", new_bars_only: bool = False,
               request_id: str | None = None) -> Take:
        if seen := self.replayed(session, request_id):
            return seen
        seed = _seed(seed)
        played_score = smf_to_score(played, "played") if played else None
        if take_id:
            parent, spec, score = self.load(session, take_id)
            parent_id: str | None = parent.id
        else:
            score = ops.name_tracks(smf_to_score(midi))
            spec = ops.spec_for_clip(score, base())
            parent_id = None
        new_spec, out = ops.extend(spec, score, bars, seed, played_score, new_bars_only)
        params = {"bars": bars, "seed": seed, "from": take_id or "file"}
        if played_score is not None:
            params["played_notes"] = sum(len(t.notes) for t in played_score.tracks)
        if new_bars_only:
            params["new_bars_only"] = True
        return self.record(session, parent_id, "continue", params, new_spec, out, request_id)

    def accompany(self, session: str, midi: bytes, add: list[str], base: MusicSpec, seed: int | None,
                  request_id: str | None = None) -> Take:
        if seen := self.replayed(session, request_id):
            return seen
        seed = _seed(seed)
        clip = ops.name_tracks(smf_to_score(midi))
        check_add(add, len(clip.tracks))
        spec, out = ops.accompany(clip, base, add, seed)
        return self.record(session, None, "accompany", {"add": add, "prompt": base.prompt, "seed": seed}, spec, out,
                           request_id)

    def rearrange(self, session: str, take_id: str, key: str | None, tempo: float | None,
                  instruments: dict[str, str], style: str | None = None, request_id: str | None = None) -> Take:
        if seen := self.replayed(session, request_id):
            return seen
        parent, spec, score = self.load(session, take_id)
        if key is None and tempo is None and not instruments and not style:
            raise SpecError("rearrange", "ask for at least one of --key, --tempo, --instrument, --style")
        new_spec, out = ops.rearrange(spec, score, key, tempo, instruments, style)
        params = {"key": key, "tempo_bpm": tempo, "instruments": instruments}
        if style:
            params["style"] = style
        return self.record(session, parent.id, "rearrange", params, new_spec, out, request_id)

    def verdict(self, session: str, take_id: str, verdict: str, reason: str, rating: int,
                request_id: str | None = None) -> Take:
        if not take_id:
            raise SpecError("take", "is empty; name a take id (see `cadenza history`)")
        if len(reason) > REASON_MAX_CHARS:
            raise SpecError("reason", f"is {len(reason)} characters; at most {REASON_MAX_CHARS} are kept")
        return self.store.set_verdict(check_session(session), take_id, verdict, reason, rating, request_id)

    def history(self, session: str) -> list[Take]:
        return self.store.history(check_session(session))


def check_add(add: list[str], existing_parts: int) -> None:
    """SpecError naming ``add`` unless it names each role at most once, at most ADD_MAX_PARTS of them,
    and the clip's parts plus them stay within PARTS_MAX."""
    repeated = sorted(role for role, count in Counter(add).items() if count > 1)[:5]
    if repeated:
        raise SpecError("add", f"names {', '.join(repeated)} more than once; name each part to add once")
    if len(add) > ADD_MAX_PARTS:
        raise SpecError("add", f"names {len(add)} parts; at most {ADD_MAX_PARTS} are added at once")
    if existing_parts + len(add) > PARTS_MAX:
        raise SpecError("add", f"the clip has {existing_parts} parts; with {len(add)} more it would pass "
                               f"{PARTS_MAX}, the most a take holds")


def _model_likelihood(score: Score, spec: MusicSpec) -> float | None:
    """The take's likelihood feature; None (stored, so it is not tried again) when the model cannot score it."""
    try:
        return taste_model.model_likelihood(score, spec)
    except Exception:  # a take the model cannot read: the feature stays neutral, the same on every replica
        log.debug("the model cannot score this take", exc_info=True)
        return None


def _spec_of(take: Take) -> MusicSpec:
    """The resolved spec a stored take was made from."""
    return spec_from_pb(pb.MusicSpec.FromString(take.spec))


def _candidates(n: int) -> int:
    if n == 0:
        return taste_model.DEFAULT_CANDIDATES
    if not 1 <= n <= 16:
        raise SpecError("candidates", f"must be 1-16 (0 = {taste_model.DEFAULT_CANDIDATES}), got {n}")
    return n
