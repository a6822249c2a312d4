from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Source(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SOURCE_UNSPECIFIED: _ClassVar[Source]
    SOURCE_EXPLICIT: _ClassVar[Source]
    SOURCE_CONTEXT: _ClassVar[Source]
    SOURCE_INFERRED: _ClassVar[Source]
    SOURCE_DEFAULT: _ClassVar[Source]
SOURCE_UNSPECIFIED: Source
SOURCE_EXPLICIT: Source
SOURCE_CONTEXT: Source
SOURCE_INFERRED: Source
SOURCE_DEFAULT: Source

class Key(_message.Message):
    __slots__ = ("tonic", "mode")
    TONIC_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    tonic: str
    mode: str
    def __init__(self, tonic: _Optional[str] = ..., mode: _Optional[str] = ...) -> None: ...

class Meter(_message.Message):
    __slots__ = ("numerator", "denominator")
    NUMERATOR_FIELD_NUMBER: _ClassVar[int]
    DENOMINATOR_FIELD_NUMBER: _ClassVar[int]
    numerator: int
    denominator: int
    def __init__(self, numerator: _Optional[int] = ..., denominator: _Optional[int] = ...) -> None: ...

class Part(_message.Message):
    __slots__ = ("name", "role", "instrument", "program", "is_drum", "low", "high")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    IS_DRUM_FIELD_NUMBER: _ClassVar[int]
    LOW_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    name: str
    role: str
    instrument: str
    program: int
    is_drum: bool
    low: int
    high: int
    def __init__(self, name: _Optional[str] = ..., role: _Optional[str] = ..., instrument: _Optional[str] = ..., program: _Optional[int] = ..., is_drum: _Optional[bool] = ..., low: _Optional[int] = ..., high: _Optional[int] = ...) -> None: ...

class MusicSpec(_message.Message):
    __slots__ = ("prompt", "tempo_bpm", "key", "meter", "bars", "start_bar", "parts", "style", "mood", "arc", "swing", "seed", "sources", "notes", "energy", "quantize", "chords")
    class SourcesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Source
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Source, str]] = ...) -> None: ...
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    TEMPO_BPM_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    METER_FIELD_NUMBER: _ClassVar[int]
    BARS_FIELD_NUMBER: _ClassVar[int]
    START_BAR_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    STYLE_FIELD_NUMBER: _ClassVar[int]
    MOOD_FIELD_NUMBER: _ClassVar[int]
    ARC_FIELD_NUMBER: _ClassVar[int]
    SWING_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    ENERGY_FIELD_NUMBER: _ClassVar[int]
    QUANTIZE_FIELD_NUMBER: _ClassVar[int]
    CHORDS_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    tempo_bpm: float
    key: Key
    meter: Meter
    bars: int
    start_bar: int
    parts: _containers.RepeatedCompositeFieldContainer[Part]
    style: str
    mood: str
    arc: str
    swing: bool
    seed: int
    sources: _containers.ScalarMap[str, Source]
    notes: _containers.RepeatedScalarFieldContainer[str]
    energy: float
    quantize: bool
    chords: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, prompt: _Optional[str] = ..., tempo_bpm: _Optional[float] = ..., key: _Optional[_Union[Key, _Mapping]] = ..., meter: _Optional[_Union[Meter, _Mapping]] = ..., bars: _Optional[int] = ..., start_bar: _Optional[int] = ..., parts: _Optional[_Iterable[_Union[Part, _Mapping]]] = ..., style: _Optional[str] = ..., mood: _Optional[str] = ..., arc: _Optional[str] = ..., swing: _Optional[bool] = ..., seed: _Optional[int] = ..., sources: _Optional[_Mapping[str, Source]] = ..., notes: _Optional[_Iterable[str]] = ..., energy: _Optional[float] = ..., quantize: _Optional[bool] = ..., chords: _Optional[_Iterable[str]] = ...) -> None: ...

class Overrides(_message.Message):
    __slots__ = ("tempo_bpm", "key", "meter", "bars", "seed", "start_bar", "quantize", "chords")
    TEMPO_BPM_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    METER_FIELD_NUMBER: _ClassVar[int]
    BARS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    START_BAR_FIELD_NUMBER: _ClassVar[int]
    QUANTIZE_FIELD_NUMBER: _ClassVar[int]
    CHORDS_FIELD_NUMBER: _ClassVar[int]
    tempo_bpm: float
    key: str
    meter: str
    bars: int
    seed: int
    start_bar: int
    quantize: bool
    chords: str
    def __init__(self, tempo_bpm: _Optional[float] = ..., key: _Optional[str] = ..., meter: _Optional[str] = ..., bars: _Optional[int] = ..., seed: _Optional[int] = ..., start_bar: _Optional[int] = ..., quantize: _Optional[bool] = ..., chords: _Optional[str] = ...) -> None: ...

class DescribeRequest(_message.Message):
    __slots__ = ("prompt", "overrides")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    overrides: Overrides
    def __init__(self, prompt: _Optional[str] = ..., overrides: _Optional[_Union[Overrides, _Mapping]] = ...) -> None: ...

class GenerateRequest(_message.Message):
    __slots__ = ("prompt", "overrides", "session", "candidates", "render_ahead")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    RENDER_AHEAD_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    overrides: Overrides
    session: str
    candidates: int
    render_ahead: bool
    def __init__(self, prompt: _Optional[str] = ..., overrides: _Optional[_Union[Overrides, _Mapping]] = ..., session: _Optional[str] = ..., candidates: _Optional[int] = ..., render_ahead: _Optional[bool] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("stage", "fraction", "message")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    FRACTION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    stage: str
    fraction: float
    message: str
    def __init__(self, stage: _Optional[str] = ..., fraction: _Optional[float] = ..., message: _Optional[str] = ...) -> None: ...

class GenerateResult(_message.Message):
    __slots__ = ("spec", "midi", "take")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    MIDI_FIELD_NUMBER: _ClassVar[int]
    TAKE_FIELD_NUMBER: _ClassVar[int]
    spec: MusicSpec
    midi: bytes
    take: str
    def __init__(self, spec: _Optional[_Union[MusicSpec, _Mapping]] = ..., midi: _Optional[bytes] = ..., take: _Optional[str] = ...) -> None: ...

class GenerateEvent(_message.Message):
    __slots__ = ("progress", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: Progress
    result: GenerateResult
    def __init__(self, progress: _Optional[_Union[Progress, _Mapping]] = ..., result: _Optional[_Union[GenerateResult, _Mapping]] = ...) -> None: ...

class RenderRequest(_message.Message):
    __slots__ = ("midi", "sample_rate", "tail", "soundfont", "plugins", "presets", "style", "roles", "bars", "loudness_lufs", "sounds", "prompt", "picture_title", "file_format", "time_reference", "handoff")
    class PluginsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class PresetsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class RolesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class SoundsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MIDI_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    TAIL_FIELD_NUMBER: _ClassVar[int]
    SOUNDFONT_FIELD_NUMBER: _ClassVar[int]
    PLUGINS_FIELD_NUMBER: _ClassVar[int]
    PRESETS_FIELD_NUMBER: _ClassVar[int]
    STYLE_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    BARS_FIELD_NUMBER: _ClassVar[int]
    LOUDNESS_LUFS_FIELD_NUMBER: _ClassVar[int]
    SOUNDS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    PICTURE_TITLE_FIELD_NUMBER: _ClassVar[int]
    FILE_FORMAT_FIELD_NUMBER: _ClassVar[int]
    TIME_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    HANDOFF_FIELD_NUMBER: _ClassVar[int]
    midi: bytes
    sample_rate: int
    tail: str
    soundfont: str
    plugins: _containers.ScalarMap[str, str]
    presets: _containers.ScalarMap[str, str]
    style: str
    roles: _containers.ScalarMap[str, str]
    bars: int
    loudness_lufs: float
    sounds: _containers.ScalarMap[str, str]
    prompt: str
    picture_title: str
    file_format: str
    time_reference: int
    handoff: str
    def __init__(self, midi: _Optional[bytes] = ..., sample_rate: _Optional[int] = ..., tail: _Optional[str] = ..., soundfont: _Optional[str] = ..., plugins: _Optional[_Mapping[str, str]] = ..., presets: _Optional[_Mapping[str, str]] = ..., style: _Optional[str] = ..., roles: _Optional[_Mapping[str, str]] = ..., bars: _Optional[int] = ..., loudness_lufs: _Optional[float] = ..., sounds: _Optional[_Mapping[str, str]] = ..., prompt: _Optional[str] = ..., picture_title: _Optional[str] = ..., file_format: _Optional[str] = ..., time_reference: _Optional[int] = ..., handoff: _Optional[str] = ...) -> None: ...

class StemsHeader(_message.Message):
    __slots__ = ("sample_rate", "channels", "frames", "parts", "clip_frames", "loudness_lufs", "true_peak_dbtp", "sources", "treatments")
    class SourcesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    CLIP_FRAMES_FIELD_NUMBER: _ClassVar[int]
    LOUDNESS_LUFS_FIELD_NUMBER: _ClassVar[int]
    TRUE_PEAK_DBTP_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    TREATMENTS_FIELD_NUMBER: _ClassVar[int]
    sample_rate: int
    channels: int
    frames: int
    parts: _containers.RepeatedScalarFieldContainer[str]
    clip_frames: int
    loudness_lufs: float
    true_peak_dbtp: float
    sources: _containers.ScalarMap[str, str]
    treatments: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, sample_rate: _Optional[int] = ..., channels: _Optional[int] = ..., frames: _Optional[int] = ..., parts: _Optional[_Iterable[str]] = ..., clip_frames: _Optional[int] = ..., loudness_lufs: _Optional[float] = ..., true_peak_dbtp: _Optional[float] = ..., sources: _Optional[_Mapping[str, str]] = ..., treatments: _Optional[_Iterable[str]] = ...) -> None: ...

class AudioChunk(_message.Message):
    __slots__ = ("part", "start_frame", "samples")
    PART_FIELD_NUMBER: _ClassVar[int]
    START_FRAME_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    part: str
    start_frame: int
    samples: bytes
    def __init__(self, part: _Optional[str] = ..., start_frame: _Optional[int] = ..., samples: _Optional[bytes] = ...) -> None: ...

class FileChunk(_message.Message):
    __slots__ = ("part", "offset", "data", "size", "path")
    PART_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    part: str
    offset: int
    data: bytes
    size: int
    path: str
    def __init__(self, part: _Optional[str] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ..., size: _Optional[int] = ..., path: _Optional[str] = ...) -> None: ...

class RenderEvent(_message.Message):
    __slots__ = ("progress", "header", "chunk", "picture_png", "file")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    PICTURE_PNG_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    progress: Progress
    header: StemsHeader
    chunk: AudioChunk
    picture_png: bytes
    file: FileChunk
    def __init__(self, progress: _Optional[_Union[Progress, _Mapping]] = ..., header: _Optional[_Union[StemsHeader, _Mapping]] = ..., chunk: _Optional[_Union[AudioChunk, _Mapping]] = ..., picture_png: _Optional[bytes] = ..., file: _Optional[_Union[FileChunk, _Mapping]] = ...) -> None: ...

class TakeResult(_message.Message):
    __slots__ = ("take", "parent", "operation", "spec", "midi", "verdict", "reason", "rating", "created", "params_json", "seed", "model_version", "session")
    TAKE_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    MIDI_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RATING_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    PARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    take: str
    parent: str
    operation: str
    spec: MusicSpec
    midi: bytes
    verdict: str
    reason: str
    rating: int
    created: float
    params_json: str
    seed: int
    model_version: str
    session: str
    def __init__(self, take: _Optional[str] = ..., parent: _Optional[str] = ..., operation: _Optional[str] = ..., spec: _Optional[_Union[MusicSpec, _Mapping]] = ..., midi: _Optional[bytes] = ..., verdict: _Optional[str] = ..., reason: _Optional[str] = ..., rating: _Optional[int] = ..., created: _Optional[float] = ..., params_json: _Optional[str] = ..., seed: _Optional[int] = ..., model_version: _Optional[str] = ..., session: _Optional[str] = ...) -> None: ...

class VaryRequest(_message.Message):
    __slots__ = ("session", "take", "parts", "amount", "seed", "candidates")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    TAKE_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    session: str
    take: str
    parts: _containers.RepeatedScalarFieldContainer[str]
    amount: float
    seed: int
    candidates: int
    def __init__(self, session: _Optional[str] = ..., take: _Optional[str] = ..., parts: _Optional[_Iterable[str]] = ..., amount: _Optional[float] = ..., seed: _Optional[int] = ..., candidates: _Optional[int] = ...) -> None: ...

class InfillRequest(_message.Message):
    __slots__ = ("session", "take", "part", "first_bar", "last_bar", "seed")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    TAKE_FIELD_NUMBER: _ClassVar[int]
    PART_FIELD_NUMBER: _ClassVar[int]
    FIRST_BAR_FIELD_NUMBER: _ClassVar[int]
    LAST_BAR_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    session: str
    take: str
    part: str
    first_bar: int
    last_bar: int
    seed: int
    def __init__(self, session: _Optional[str] = ..., take: _Optional[str] = ..., part: _Optional[str] = ..., first_bar: _Optional[int] = ..., last_bar: _Optional[int] = ..., seed: _Optional[int] = ...) -> None: ...

class ContinueRequest(_message.Message):
    __slots__ = ("session", "take", "midi", "bars", "seed", "prompt", "played", "new_bars_only")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    TAKE_FIELD_NUMBER: _ClassVar[int]
    MIDI_FIELD_NUMBER: _ClassVar[int]
    BARS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    PLAYED_FIELD_NUMBER: _ClassVar[int]
    NEW_BARS_ONLY_FIELD_NUMBER: _ClassVar[int]
    session: str
    take: str
    midi: bytes
    bars: int
    seed: int
    prompt: str
    played: bytes
    new_bars_only: bool
    def __init__(self, session: _Optional[str] = ..., take: _Optional[str] = ..., midi: _Optional[bytes] = ..., bars: _Optional[int] = ..., seed: _Optional[int] = ..., prompt: _Optional[str] = ..., played: _Optional[bytes] = ..., new_bars_only: _Optional[bool] = ...) -> None: ...

class AccompanyRequest(_message.Message):
    __slots__ = ("session", "midi", "add", "prompt", "seed")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    MIDI_FIELD_NUMBER: _ClassVar[int]
    ADD_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    session: str
    midi: bytes
    add: _containers.RepeatedScalarFieldContainer[str]
    prompt: str
    seed: int
    def __init__(self, session: _Optional[str] = ..., midi: _Optional[bytes] = ..., add: _Optional[_Iterable[str]] = ..., prompt: _Optional[str] = ..., seed: _Optional[int] = ...) -> None: ...

class RearrangeRequest(_message.Message):
    __slots__ = ("session", "take", "key", "tempo_bpm", "instruments", "style")
    class InstrumentsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SESSION_FIELD_NUMBER: _ClassVar[int]
    TAKE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    TEMPO_BPM_FIELD_NUMBER: _ClassVar[int]
    INSTRUMENTS_FIELD_NUMBER: _ClassVar[int]
    STYLE_FIELD_NUMBER: _ClassVar[int]
    session: str
    take: str
    key: str
    tempo_bpm: float
    instruments: _containers.ScalarMap[str, str]
    style: str
    def __init__(self, session: _Optional[str] = ..., take: _Optional[str] = ..., key: _Optional[str] = ..., tempo_bpm: _Optional[float] = ..., instruments: _Optional[_Mapping[str, str]] = ..., style: _Optional[str] = ...) -> None: ...

class VerdictRequest(_message.Message):
    __slots__ = ("session", "take", "verdict", "reason", "rating")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    TAKE_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RATING_FIELD_NUMBER: _ClassVar[int]
    session: str
    take: str
    verdict: str
    reason: str
    rating: int
    def __init__(self, session: _Optional[str] = ..., take: _Optional[str] = ..., verdict: _Optional[str] = ..., reason: _Optional[str] = ..., rating: _Optional[int] = ...) -> None: ...

class TakeRequest(_message.Message):
    __slots__ = ("session", "take", "any_session")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    TAKE_FIELD_NUMBER: _ClassVar[int]
    ANY_SESSION_FIELD_NUMBER: _ClassVar[int]
    session: str
    take: str
    any_session: bool
    def __init__(self, session: _Optional[str] = ..., take: _Optional[str] = ..., any_session: _Optional[bool] = ...) -> None: ...

class HistoryRequest(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: str
    def __init__(self, session: _Optional[str] = ...) -> None: ...

class HistoryReply(_message.Message):
    __slots__ = ("takes", "omitted")
    TAKES_FIELD_NUMBER: _ClassVar[int]
    OMITTED_FIELD_NUMBER: _ClassVar[int]
    takes: _containers.RepeatedCompositeFieldContainer[TakeResult]
    omitted: int
    def __init__(self, takes: _Optional[_Iterable[_Union[TakeResult, _Mapping]]] = ..., omitted: _Optional[int] = ...) -> None: ...

class TasteRequest(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: str
    def __init__(self, session: _Optional[str] = ...) -> None: ...

class TasteReply(_message.Message):
    __slots__ = ("lines", "weights", "examples")
    class WeightsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    LINES_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedScalarFieldContainer[str]
    weights: _containers.ScalarMap[str, float]
    examples: int
    def __init__(self, lines: _Optional[_Iterable[str]] = ..., weights: _Optional[_Mapping[str, float]] = ..., examples: _Optional[int] = ...) -> None: ...
