// A single-class VST3 plug-in (component, processor and edit controller in one object) plus its
// factory, over vst3_abi.h. Each plug-in source defines the DSP (a Dsp subclass) and a PluginSpec.
//
// Parameters are normalised 0..1 values kept in this object: the host sets them through
// IEditController::setParamNormalized or through IParameterChanges in process(), both land here,
// and the DSP reads them at the start of every block. Notes arrive as IEventList note events and
// are handed to the DSP at their sample offset, so timing is sample-accurate.
#pragma once

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "vst3_abi.h"

#define CADENZA_EXPORT extern "C" __attribute__((visibility("default")))

namespace cadenza {

using namespace vst3;

struct ParamSpec {
    const char* title;
    const char* units;
    double minimum;
    double maximum;
    double defaultNormalized;
    bool logarithmic;  // plain = min * (max/min)^normalized, for frequencies and times

    double plain(double normalized) const {
        return logarithmic ? minimum * std::pow(maximum / minimum, normalized)
                           : minimum + (maximum - minimum) * normalized;
    }
    double normalized(double plainValue) const {
        double n = logarithmic ? std::log(plainValue / minimum) / std::log(maximum / minimum)
                               : (plainValue - minimum) / (maximum - minimum);
        return n < 0 ? 0 : n > 1 ? 1 : n;
    }
};

struct PluginSpec {
    const char* name;           // must equal the bundle's name: JUCE finds the class by it
    Iid classId;
    const char* subCategories;  // "Instrument|Synth" makes hosts treat it as an instrument
    bool instrument;            // true: event input + stereo output; false: stereo in -> stereo out
    std::vector<ParamSpec> params;
};

// The sound itself; the plug-in object calls these on the audio thread.
class Dsp {
public:
    virtual ~Dsp() = default;
    virtual void prepare(double sampleRate) = 0;
    virtual void reset() = 0;
    virtual void noteOn(int pitch, float velocity) { (void)pitch; (void)velocity; }
    virtual void noteOff(int pitch) { (void)pitch; }
    // Render frames [0, n) of out[0], out[1]; in is null for instruments. params are plain values.
    virtual void process(const float* const* in, float* const* out, int n, const double* params) = 0;
};

const PluginSpec& spec();  // defined by each plug-in source
Dsp* makeDsp();            // likewise

inline void copyString(char16* dest, const char* source, int size) {
    int i = 0;
    for (; source[i] && i < size - 1; ++i) dest[i] = char16(source[i]);
    dest[i] = 0;
}

inline void copyString(char* dest, const char* source, int size) {
    std::strncpy(dest, source, size - 1);
    dest[size - 1] = 0;
}

// Parameter ids start here, not at 0: JUCE (pedalboard's host) turns a MIDI "all notes off" into a
// change of parameter id 0 when the plug-in has no IMidiMapping, which would zero the first parameter.
constexpr ParamID kFirstParamId = 1000;

class Plugin final : public IComponent, public IAudioProcessor, public IEditController {
public:
    Plugin() : dsp_(makeDsp()) {
        for (const auto& p : spec().params) normalized_.push_back(p.defaultNormalized);
        dsp_->prepare(sampleRate_);
    }
    ~Plugin() { delete dsp_; }

    // FUnknown (one implementation for all three bases)
    tresult queryInterface(const TUID iid, void** obj) override {
        if (IComponent_iid.matches(iid) || IPluginBase_iid.matches(iid) || FUnknown_iid.matches(iid))
            *obj = static_cast<IComponent*>(this);
        else if (IAudioProcessor_iid.matches(iid))
            *obj = static_cast<IAudioProcessor*>(this);
        else if (IEditController_iid.matches(iid))
            *obj = static_cast<IEditController*>(this);
        else {
            *obj = nullptr;
            return kNoInterface;
        }
        addRef();
        return kResultOk;
    }
    uint32 addRef() override { return ++refs_; }
    uint32 release() override {
        uint32 left = --refs_;
        if (left == 0) delete this;
        return left;
    }

    // IPluginBase: called once as component and once as controller; both are this object.
    tresult initialize(FUnknown*) override { return kResultOk; }
    tresult terminate() override { return kResultOk; }

    // IComponent
    tresult getControllerClassId(TUID) override { return kResultFalse; }  // no separate controller
    tresult setIoMode(IoMode) override { return kResultOk; }
    int32 getBusCount(MediaType type, BusDirection dir) override {
        if (type == kAudio) return dir == kOutput ? 1 : spec().instrument ? 0 : 1;
        if (type == kEvent) return dir == kInput && spec().instrument ? 1 : 0;
        return 0;
    }
    tresult getBusInfo(MediaType type, BusDirection dir, int32 index, BusInfo& bus) override {
        if (index != 0 || index >= getBusCount(type, dir)) return kInvalidArgument;
        bus.mediaType = type;
        bus.direction = dir;
        bus.channelCount = type == kAudio ? 2 : 16;
        copyString(bus.name, type == kEvent ? "MIDI In" : dir == kInput ? "Input" : "Output", 128);
        bus.busType = kMain;
        bus.flags = BusInfo::kDefaultActive;
        return kResultOk;
    }
    tresult getRoutingInfo(RoutingInfo&, RoutingInfo&) override { return kNotImplemented; }
    tresult activateBus(MediaType, BusDirection, int32, TBool) override { return kResultOk; }
    tresult setActive(TBool state) override {
        if (state) dsp_->reset();
        return kResultOk;
    }
    // State: the normalised parameter values as doubles, in parameter order.
    tresult setState(IBStream* state) override { return readState(state); }
    tresult getState(IBStream* state) override {
        if (!state) return kInvalidArgument;
        int32 written = 0;
        return state->write(normalized_.data(), int32(normalized_.size() * sizeof(double)), &written);
    }

    // IAudioProcessor
    tresult setBusArrangements(SpeakerArrangement* inputs, int32 numIns, SpeakerArrangement* outputs,
                               int32 numOuts) override {
        if (numOuts != 1 || outputs[0] != kStereo) return kResultFalse;
        if (numIns != getBusCount(kAudio, kInput) || (numIns == 1 && inputs[0] != kStereo)) return kResultFalse;
        return kResultTrue;
    }
    tresult getBusArrangement(BusDirection dir, int32 index, SpeakerArrangement& arr) override {
        if (index != 0 || index >= getBusCount(kAudio, dir)) return kInvalidArgument;
        arr = kStereo;
        return kResultOk;
    }
    tresult canProcessSampleSize(int32 size) override { return size == kSample32 ? kResultTrue : kResultFalse; }
    uint32 getLatencySamples() override { return 0; }
    tresult setupProcessing(ProcessSetup& setup) override {
        if (setup.symbolicSampleSize != kSample32) return kResultFalse;
        sampleRate_ = setup.sampleRate;
        dsp_->prepare(sampleRate_);
        return kResultOk;
    }
    tresult setProcessing(TBool) override { return kResultOk; }
    tresult process(ProcessData& data) override {
        applyParameterChanges(data.inputParameterChanges);
        if (data.numSamples <= 0 || data.numOutputs < 1 || !data.outputs) return kResultOk;
        if (data.symbolicSampleSize != kSample32) return kInvalidArgument;
        AudioBusBuffers& outBus = data.outputs[0];
        if (outBus.numChannels < 1) return kResultOk;
        float* const* out = outBus.channelBuffers32;
        float* right = outBus.numChannels > 1 ? out[1] : scratch(data.numSamples);
        float* channels[2] = {out[0], right};
        const float* ins[2] = {nullptr, nullptr};
        const float* const* in = nullptr;
        if (!spec().instrument && data.numInputs > 0 && data.inputs && data.inputs[0].numChannels > 0) {
            ins[0] = data.inputs[0].channelBuffers32[0];
            ins[1] = data.inputs[0].numChannels > 1 ? data.inputs[0].channelBuffers32[1] : ins[0];
            in = ins;
        }
        std::vector<double>& plain = plainValues();
        int done = 0;
        int32 count = data.inputEvents ? data.inputEvents->getEventCount() : 0;
        for (int32 i = 0; i <= count; ++i) {
            Event e{};
            int at = data.numSamples;
            if (i < count) {
                if (data.inputEvents->getEvent(i, e) != kResultOk) continue;
                at = e.sampleOffset < done ? done : e.sampleOffset > data.numSamples ? data.numSamples : e.sampleOffset;
            }
            if (at > done) {  // render up to the event, then apply it
                const float* segIn[2] = {in ? in[0] + done : nullptr, in ? in[1] + done : nullptr};
                float* segOut[2] = {channels[0] + done, channels[1] + done};
                dsp_->process(in ? segIn : nullptr, segOut, at - done, plain.data());
                done = at;
            }
            if (i < count) {
                if (e.type == Event::kNoteOnEvent && e.noteOn.velocity > 0)
                    dsp_->noteOn(e.noteOn.pitch, e.noteOn.velocity);
                else if (e.type == Event::kNoteOnEvent)
                    dsp_->noteOff(e.noteOn.pitch);
                else if (e.type == Event::kNoteOffEvent)
                    dsp_->noteOff(e.noteOff.pitch);
            }
        }
        outBus.silenceFlags = 0;
        return kResultOk;
    }
    uint32 getTailSamples() override { return uint32(sampleRate_ * 2); }

    // IEditController
    tresult setComponentState(IBStream* state) override { return readState(state); }
    int32 getParameterCount() override { return int32(spec().params.size()); }
    tresult getParameterInfo(int32 index, ParameterInfo& info) override {
        if (index < 0 || index >= int32(spec().params.size())) return kInvalidArgument;
        const ParamSpec& p = spec().params[index];
        std::memset(&info, 0, sizeof info);
        info.id = kFirstParamId + ParamID(index);
        copyString(info.title, p.title, 128);
        copyString(info.shortTitle, p.title, 128);
        copyString(info.units, p.units, 128);
        info.stepCount = 0;
        info.defaultNormalizedValue = p.defaultNormalized;
        info.unitId = 0;
        info.flags = ParameterInfo::kCanAutomate;
        return kResultOk;
    }
    tresult getParamStringByValue(ParamID id, ParamValue value, String128 string) override {
        if (!known(id)) return kInvalidArgument;
        char text[64];
        double plain = spec().params[id - kFirstParamId].plain(value);
        std::snprintf(text, sizeof text, "%.4g", plain);
        copyString(string, text, 128);
        return kResultOk;
    }
    tresult getParamValueByString(ParamID id, TChar* string, ParamValue& value) override {
        if (!known(id) || !string) return kInvalidArgument;
        std::string text;
        for (int i = 0; string[i] && i < 127; ++i) text.push_back(char(string[i]));
        char* end = nullptr;
        double plain = std::strtod(text.c_str(), &end);
        if (end == text.c_str()) return kResultFalse;
        value = spec().params[id - kFirstParamId].normalized(plain);
        return kResultOk;
    }
    ParamValue normalizedParamToPlain(ParamID id, ParamValue value) override {
        return known(id) ? spec().params[id - kFirstParamId].plain(value) : value;
    }
    ParamValue plainParamToNormalized(ParamID id, ParamValue plain) override {
        return known(id) ? spec().params[id - kFirstParamId].normalized(plain) : plain;
    }
    ParamValue getParamNormalized(ParamID id) override { return known(id) ? normalized_[id - kFirstParamId] : 0.0; }
    tresult setParamNormalized(ParamID id, ParamValue value) override {
        if (!known(id)) return kInvalidArgument;
        normalized_[id - kFirstParamId] = value < 0 ? 0 : value > 1 ? 1 : value;
        return kResultOk;
    }
    tresult setComponentHandler(FUnknown*) override { return kResultOk; }
    void* createView(FIDString) override { return nullptr; }

private:
    bool known(ParamID id) const { return id >= kFirstParamId && id - kFirstParamId < normalized_.size(); }
    tresult readState(IBStream* state) {
        if (!state) return kInvalidArgument;
        std::vector<double> values(normalized_.size());
        int32 got = 0;
        if (state->read(values.data(), int32(values.size() * sizeof(double)), &got) != kResultOk ||
            got != int32(values.size() * sizeof(double)))
            return kResultFalse;
        for (size_t i = 0; i < values.size(); ++i) setParamNormalized(kFirstParamId + ParamID(i), values[i]);
        return kResultOk;
    }
    void applyParameterChanges(IParameterChanges* changes) {
        if (!changes) return;
        for (int32 i = 0, n = changes->getParameterCount(); i < n; ++i) {
            IParamValueQueue* queue = changes->getParameterData(i);
            if (!queue || queue->getPointCount() < 1) continue;
            int32 offset = 0;
            ParamValue value = 0;
            if (queue->getPoint(queue->getPointCount() - 1, offset, value) == kResultOk)
                setParamNormalized(queue->getParameterId(), value);
        }
    }
    std::vector<double>& plainValues() {
        plain_.resize(normalized_.size());
        for (size_t i = 0; i < normalized_.size(); ++i) plain_[i] = spec().params[i].plain(normalized_[i]);
        return plain_;
    }
    float* scratch(int n) {
        scratch_.assign(size_t(n), 0.0f);
        return scratch_.data();
    }

    std::atomic<uint32> refs_{1};
    Dsp* dsp_;
    double sampleRate_ = 48000.0;
    std::vector<double> normalized_;
    std::vector<double> plain_;
    std::vector<float> scratch_;
};

class Factory final : public IPluginFactory2 {
public:
    tresult queryInterface(const TUID iid, void** obj) override {
        if (IPluginFactory2_iid.matches(iid) || IPluginFactory_iid.matches(iid) || FUnknown_iid.matches(iid)) {
            *obj = this;
            addRef();
            return kResultOk;
        }
        *obj = nullptr;
        return kNoInterface;
    }
    uint32 addRef() override { return 1; }   // a static object: lives as long as the library
    uint32 release() override { return 1; }
    tresult getFactoryInfo(PFactoryInfo* info) override {
        std::memset(info, 0, sizeof *info);
        copyString(info->vendor, "Cadenza", 64);
        copyString(info->url, "https://example.invalid/cadenza", 256);
        copyString(info->email, "cadenza@example.invalid", 128);
        return kResultOk;
    }
    int32 countClasses() override { return 1; }
    tresult getClassInfo(int32 index, PClassInfo* info) override {
        if (index != 0) return kInvalidArgument;
        std::memset(info, 0, sizeof *info);
        std::memcpy(info->cid, spec().classId.bytes, 16);
        info->cardinality = PClassInfo::kManyInstances;
        copyString(info->category, "Audio Module Class", 32);
        copyString(info->name, spec().name, 64);
        return kResultOk;
    }
    tresult getClassInfo2(int32 index, PClassInfo2* info) override {
        if (index != 0) return kInvalidArgument;
        std::memset(info, 0, sizeof *info);
        std::memcpy(info->cid, spec().classId.bytes, 16);
        info->cardinality = PClassInfo::kManyInstances;
        copyString(info->category, "Audio Module Class", 32);
        copyString(info->name, spec().name, 64);
        copyString(info->subCategories, spec().subCategories, 128);
        copyString(info->vendor, "Cadenza", 64);
        copyString(info->version, "1.0.0", 64);
        copyString(info->sdkVersion, "VST 3.7.0", 64);
        return kResultOk;
    }
    tresult createInstance(FIDString cid, FIDString iid, void** obj) override {
        if (!spec().classId.matches(cid)) {
            *obj = nullptr;
            return kNoInterface;
        }
        Plugin* plugin = new Plugin();
        tresult result = plugin->queryInterface(iid, obj);
        plugin->release();  // the reference queryInterface took is the caller's
        return result;
    }
};

}  // namespace cadenza

// The module's entry points (Linux VST3): the factory, and load/unload hooks.
#define CADENZA_VST3_ENTRY_POINTS                                                         \
    CADENZA_EXPORT vst3::IPluginFactory* GetPluginFactory() {                             \
        static cadenza::Factory factory;                                                  \
        return &factory;                                                                  \
    }                                                                                     \
    CADENZA_EXPORT bool ModuleEntry(void*) { return true; }                               \
    CADENZA_EXPORT bool ModuleExit() { return true; }
