// The few VST3 interfaces a minimal plug-in needs, declared by hand for Linux x86_64 (GCC/Clang).
//
// Written for Cadenza's test instruments from the public VST3 interface description: every
// interface is an abstract class whose virtual functions appear in exactly the SDK's order (that
// order *is* the binary interface), structs use natural alignment (the SDK packs to 16 on 64-bit
// Linux, which changes nothing for these members), result codes are the non-COM values, and
// interface ids are the SDK's four 32-bit words laid out big-endian (INLINE_UID, non-COM form).
// Only what the plug-ins implement or call is declared; everything else is answered with
// kNoInterface by queryInterface.
#pragma once

#include <cstdint>

namespace vst3 {

using int8 = char;
using int16 = int16_t;
using uint16 = uint16_t;
using int32 = int32_t;
using uint32 = uint32_t;
using int64 = int64_t;
using uint64 = uint64_t;
using tresult = int32;
using TBool = uint8_t;
using char8 = char;
using char16 = char16_t;
using TChar = char16;
using TUID = int8[16];
using FIDString = const char8*;
using String128 = TChar[128];
using ParamID = uint32;
using ParamValue = double;
using MediaType = int32;
using BusDirection = int32;
using BusType = int32;
using IoMode = int32;
using UnitID = int32;
using SpeakerArrangement = uint64;
using Sample32 = float;
using Sample64 = double;

enum : tresult {
    kNoInterface = -1, kResultOk = 0, kResultTrue = 0, kResultFalse = 1, kInvalidArgument = 2,
    kNotImplemented = 3, kInternalError = 4, kNotInitialized = 5, kOutOfMemory = 6,
};

// An interface id as the SDK's INLINE_UID builds it on Linux: each 32-bit word big-endian.
struct Iid {
    int8 bytes[16];
    constexpr Iid(uint32 l1, uint32 l2, uint32 l3, uint32 l4)
        : bytes{int8(l1 >> 24), int8(l1 >> 16), int8(l1 >> 8), int8(l1), int8(l2 >> 24), int8(l2 >> 16),
                int8(l2 >> 8), int8(l2), int8(l3 >> 24), int8(l3 >> 16), int8(l3 >> 8), int8(l3),
                int8(l4 >> 24), int8(l4 >> 16), int8(l4 >> 8), int8(l4)} {}
    bool matches(const int8* other) const {
        for (int i = 0; i < 16; ++i)
            if (bytes[i] != other[i]) return false;
        return true;
    }
};

constexpr Iid FUnknown_iid(0x00000000, 0x00000000, 0xC0000000, 0x00000046);
constexpr Iid IPluginBase_iid(0x22888DDB, 0x156E45AE, 0x8358B348, 0x08190625);
constexpr Iid IPluginFactory_iid(0x7A4D811C, 0x52114A1F, 0xAED9D2EE, 0x0B43BF9F);
constexpr Iid IPluginFactory2_iid(0x0007B650, 0xF24B4C0B, 0xA464EDB9, 0xF00B2ABB);
constexpr Iid IComponent_iid(0xE831FF31, 0xF2D54301, 0x928EBBEE, 0x25697802);
constexpr Iid IAudioProcessor_iid(0x42043F99, 0xB7DA453C, 0xA569E79D, 0x9AAEC33D);
constexpr Iid IEditController_iid(0xDCD7BBE3, 0x7742448D, 0xA874AACC, 0x979C759E);

class FUnknown {
public:
    virtual tresult queryInterface(const TUID iid, void** obj) = 0;
    virtual uint32 addRef() = 0;
    virtual uint32 release() = 0;
};

class IBStream : public FUnknown {
public:
    virtual tresult read(void* buffer, int32 numBytes, int32* numBytesRead) = 0;
    virtual tresult write(void* buffer, int32 numBytes, int32* numBytesWritten) = 0;
    virtual tresult seek(int64 pos, int32 mode, int64* result) = 0;
    virtual tresult tell(int64* pos) = 0;
};

// --- factory ---------------------------------------------------------------------------------
struct PFactoryInfo {
    enum { kUnicode = 1 << 4 };
    char8 vendor[64];
    char8 url[256];
    char8 email[128];
    int32 flags;
};

struct PClassInfo {
    enum { kManyInstances = 0x7FFFFFFF };
    TUID cid;
    int32 cardinality;
    char8 category[32];
    char8 name[64];
};

struct PClassInfo2 {
    TUID cid;
    int32 cardinality;
    char8 category[32];
    char8 name[64];
    uint32 classFlags;
    char8 subCategories[128];
    char8 vendor[64];
    char8 version[64];
    char8 sdkVersion[64];
};

class IPluginFactory : public FUnknown {
public:
    virtual tresult getFactoryInfo(PFactoryInfo* info) = 0;
    virtual int32 countClasses() = 0;
    virtual tresult getClassInfo(int32 index, PClassInfo* info) = 0;
    virtual tresult createInstance(FIDString cid, FIDString iid, void** obj) = 0;
};

class IPluginFactory2 : public IPluginFactory {
public:
    virtual tresult getClassInfo2(int32 index, PClassInfo2* info) = 0;
};

class IPluginBase : public FUnknown {
public:
    virtual tresult initialize(FUnknown* context) = 0;
    virtual tresult terminate() = 0;
};

// --- component -------------------------------------------------------------------------------
enum MediaTypes { kAudio = 0, kEvent = 1 };
enum BusDirections { kInput = 0, kOutput = 1 };
enum BusTypes { kMain = 0, kAux = 1 };
constexpr SpeakerArrangement kStereo = 0x3;  // kSpeakerL | kSpeakerR

struct BusInfo {
    enum { kDefaultActive = 1 << 0 };
    MediaType mediaType;
    BusDirection direction;
    int32 channelCount;
    String128 name;
    BusType busType;
    uint32 flags;
};

struct RoutingInfo {
    MediaType mediaType;
    int32 busIndex;
    int32 channel;
};

class IComponent : public IPluginBase {
public:
    virtual tresult getControllerClassId(TUID classId) = 0;
    virtual tresult setIoMode(IoMode mode) = 0;
    virtual int32 getBusCount(MediaType type, BusDirection dir) = 0;
    virtual tresult getBusInfo(MediaType type, BusDirection dir, int32 index, BusInfo& bus) = 0;
    virtual tresult getRoutingInfo(RoutingInfo& inInfo, RoutingInfo& outInfo) = 0;
    virtual tresult activateBus(MediaType type, BusDirection dir, int32 index, TBool state) = 0;
    virtual tresult setActive(TBool state) = 0;
    virtual tresult setState(IBStream* state) = 0;
    virtual tresult getState(IBStream* state) = 0;
};

// --- events and parameter changes (host objects the plug-in calls) ---------------------------
struct NoteOnEvent {
    int16 channel;
    int16 pitch;
    float tuning;
    float velocity;
    int32 length;
    int32 noteId;
};

struct NoteOffEvent {
    int16 channel;
    int16 pitch;
    float velocity;
    int32 noteId;
    float tuning;
};

struct Event {
    enum { kNoteOnEvent = 0, kNoteOffEvent = 1 };
    int32 busIndex;
    int32 sampleOffset;
    double ppqPosition;
    uint16 flags;
    uint16 type;
    union {
        NoteOnEvent noteOn;
        NoteOffEvent noteOff;
        uint8_t largest[24];  // the SDK's largest member (NoteExpressionTextEvent) is 24 bytes
        void* align;
    };
};

class IEventList : public FUnknown {
public:
    virtual int32 getEventCount() = 0;
    virtual tresult getEvent(int32 index, Event& e) = 0;
    virtual tresult addEvent(Event& e) = 0;
};

class IParamValueQueue : public FUnknown {
public:
    virtual ParamID getParameterId() = 0;
    virtual int32 getPointCount() = 0;
    virtual tresult getPoint(int32 index, int32& sampleOffset, ParamValue& value) = 0;
    virtual tresult addPoint(int32 sampleOffset, ParamValue value, int32& index) = 0;
};

class IParameterChanges : public FUnknown {
public:
    virtual int32 getParameterCount() = 0;
    virtual IParamValueQueue* getParameterData(int32 index) = 0;
    virtual IParamValueQueue* addParameterData(const ParamID& id, int32& index) = 0;
};

// --- audio processing ------------------------------------------------------------------------
enum SymbolicSampleSizes { kSample32 = 0, kSample64 = 1 };

struct ProcessSetup {
    int32 processMode;
    int32 symbolicSampleSize;
    int32 maxSamplesPerBlock;
    double sampleRate;
};

struct AudioBusBuffers {
    int32 numChannels;
    uint64 silenceFlags;
    union {
        Sample32** channelBuffers32;
        Sample64** channelBuffers64;
    };
};

struct ProcessData {
    int32 processMode;
    int32 symbolicSampleSize;
    int32 numSamples;
    int32 numInputs;
    int32 numOutputs;
    AudioBusBuffers* inputs;
    AudioBusBuffers* outputs;
    IParameterChanges* inputParameterChanges;
    IParameterChanges* outputParameterChanges;
    IEventList* inputEvents;
    IEventList* outputEvents;
    void* processContext;
};

class IAudioProcessor : public FUnknown {
public:
    virtual tresult setBusArrangements(SpeakerArrangement* inputs, int32 numIns, SpeakerArrangement* outputs,
                                       int32 numOuts) = 0;
    virtual tresult getBusArrangement(BusDirection dir, int32 index, SpeakerArrangement& arr) = 0;
    virtual tresult canProcessSampleSize(int32 symbolicSampleSize) = 0;
    virtual uint32 getLatencySamples() = 0;
    virtual tresult setupProcessing(ProcessSetup& setup) = 0;
    virtual tresult setProcessing(TBool state) = 0;
    virtual tresult process(ProcessData& data) = 0;
    virtual uint32 getTailSamples() = 0;
};

// --- edit controller -------------------------------------------------------------------------
struct ParameterInfo {
    enum { kCanAutomate = 1 << 0 };
    ParamID id;
    String128 title;
    String128 shortTitle;
    String128 units;
    int32 stepCount;
    ParamValue defaultNormalizedValue;
    UnitID unitId;
    int32 flags;
};

class IEditController : public IPluginBase {
public:
    virtual tresult setComponentState(IBStream* state) = 0;
    virtual tresult setState(IBStream* state) = 0;
    virtual tresult getState(IBStream* state) = 0;
    virtual int32 getParameterCount() = 0;
    virtual tresult getParameterInfo(int32 paramIndex, ParameterInfo& info) = 0;
    virtual tresult getParamStringByValue(ParamID id, ParamValue valueNormalized, String128 string) = 0;
    virtual tresult getParamValueByString(ParamID id, TChar* string, ParamValue& valueNormalized) = 0;
    virtual ParamValue normalizedParamToPlain(ParamID id, ParamValue valueNormalized) = 0;
    virtual ParamValue plainParamToNormalized(ParamID id, ParamValue plainValue) = 0;
    virtual ParamValue getParamNormalized(ParamID id) = 0;
    virtual tresult setParamNormalized(ParamID id, ParamValue value) = 0;
    virtual tresult setComponentHandler(FUnknown* handler) = 0;  // IComponentHandler*; unused here
    virtual void* createView(FIDString name) = 0;                // IPlugView*; no editor here
};

static_assert(sizeof(PClassInfo) == 116, "PClassInfo layout");
static_assert(sizeof(PClassInfo2) == 440, "PClassInfo2 layout");
static_assert(sizeof(BusInfo) == 276, "BusInfo layout");
static_assert(sizeof(ParameterInfo) == 792, "ParameterInfo layout");
static_assert(sizeof(Event) == 48, "Event layout");
static_assert(sizeof(ProcessSetup) == 24, "ProcessSetup layout");
static_assert(sizeof(AudioBusBuffers) == 24, "AudioBusBuffers layout");
static_assert(sizeof(ProcessData) == 80, "ProcessData layout");

}  // namespace vst3
