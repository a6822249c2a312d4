// CadenzaSynth: a small polyphonic subtractive synth as a VST3 instrument, for Cadenza's tests
// and as a demonstration instrument. Per voice: two band-limited (PolyBLEP) saws detuned by
// +-4 cents (one per channel, for width) plus a sine at the fundamental for body, an ADSR envelope
// and a resonant 2-pole state-variable low-pass. Parameters: Gain, Cutoff, Attack, Release.
#include "plugin_base.h"

namespace {

using cadenza::ParamSpec;

enum { kGain, kCutoff, kAttack, kRelease };

constexpr int kVoices = 16;
constexpr double kPi = 3.14159265358979323846;
constexpr double kDetuneRatio = 1.0023131618421165;  // 2^(4/1200): 4 cents
constexpr double kDecaySeconds = 0.25;
constexpr double kSustain = 0.6;
constexpr double kResonance = 0.35;  // SVF damping 2*(1-r): a gentle bump at the cutoff

double polyBlep(double phase, double step) {
    if (phase < step) {
        double t = phase / step;
        return t + t - t * t - 1.0;
    }
    if (phase > 1.0 - step) {
        double t = (phase - 1.0) / step;
        return t * t + t + t + 1.0;
    }
    return 0.0;
}

struct Svf {  // Andrew Simper's trapezoidal state-variable filter, low-pass output
    double ic1 = 0, ic2 = 0;
    double tick(double x, double g, double k) {
        double a1 = 1.0 / (1.0 + g * (g + k)), a2 = g * a1, a3 = g * a2;
        double v3 = x - ic2, v1 = a1 * ic1 + a2 * v3, v2 = ic2 + a2 * ic1 + a3 * v3;
        ic1 = 2 * v1 - ic1;
        ic2 = 2 * v2 - ic2;
        return v2;
    }
};

struct Voice {
    enum Stage { kIdle, kAttackStage, kDecayStage, kSustainStage, kReleaseStage };
    Stage stage = kIdle;
    int pitch = -1;
    double velocity = 0, level = 0, releaseFrom = 0, age = 0;
    double phaseL = 0, phaseR = 0, phaseSub = 0, freq = 0;  // phases in cycles, 0..1
    Svf filterL, filterR;
};

class SynthDsp final : public cadenza::Dsp {
public:
    void prepare(double sampleRate) override { rate_ = sampleRate; }
    void reset() override {
        for (Voice& v : voices_) v = Voice();
    }
    void noteOn(int pitch, float velocity) override {
        Voice* pick = nullptr;
        for (Voice& v : voices_)  // a free voice, else steal the oldest
            if (v.stage == Voice::kIdle) { pick = &v; break; }
        if (!pick) {
            pick = &voices_[0];
            for (Voice& v : voices_)
                if (v.age > pick->age) pick = &v;
        }
        *pick = Voice();
        pick->stage = Voice::kAttackStage;
        pick->pitch = pitch;
        pick->velocity = velocity;
        pick->freq = 440.0 * std::pow(2.0, (pitch - 69) / 12.0);
    }
    void noteOff(int pitch) override {
        for (Voice& v : voices_)
            if (v.pitch == pitch && v.stage != Voice::kIdle && v.stage != Voice::kReleaseStage) {
                v.stage = Voice::kReleaseStage;
                v.releaseFrom = v.level;
            }
    }
    void process(const float* const*, float* const* out, int n, const double* params) override {
        double gain = std::pow(10.0, params[kGain] / 20.0);
        double attackStep = 1.0 / (params[kAttack] * rate_);
        double decayStep = (1.0 - kSustain) / (kDecaySeconds * rate_);
        double releaseSeconds = params[kRelease];
        double cutoff = params[kCutoff] < rate_ * 0.45 ? params[kCutoff] : rate_ * 0.45;
        double g = std::tan(kPi * cutoff / rate_), k = 2.0 * (1.0 - kResonance);
        for (int i = 0; i < n; ++i) out[0][i] = out[1][i] = 0.0f;
        for (Voice& v : voices_) {
            if (v.stage == Voice::kIdle) continue;
            double stepL = v.freq * kDetuneRatio / rate_, stepR = v.freq / kDetuneRatio / rate_;
            double stepSub = v.freq / rate_;  // at the note's pitch: an octave-down sine would blur it
            double releaseStep = v.releaseFrom / (releaseSeconds * rate_);
            for (int i = 0; i < n; ++i) {
                switch (v.stage) {
                    case Voice::kAttackStage:
                        v.level += attackStep;
                        if (v.level >= 1.0) { v.level = 1.0; v.stage = Voice::kDecayStage; }
                        break;
                    case Voice::kDecayStage:
                        v.level -= decayStep;
                        if (v.level <= kSustain) { v.level = kSustain; v.stage = Voice::kSustainStage; }
                        break;
                    case Voice::kReleaseStage:
                        v.level -= releaseStep;
                        if (v.level <= 0.0) { v.level = 0.0; v.stage = Voice::kIdle; }
                        break;
                    default:
                        break;
                }
                double sawL = 2.0 * v.phaseL - 1.0 - polyBlep(v.phaseL, stepL);
                double sawR = 2.0 * v.phaseR - 1.0 - polyBlep(v.phaseR, stepR);
                double sub = 0.5 * std::sin(2.0 * kPi * v.phaseSub);
                double amp = 0.2 * gain * v.velocity * v.level;
                out[0][i] += float(amp * v.filterL.tick(sawL + sub, g, k));
                out[1][i] += float(amp * v.filterR.tick(sawR + sub, g, k));
                v.phaseL += stepL; if (v.phaseL >= 1.0) v.phaseL -= 1.0;
                v.phaseR += stepR; if (v.phaseR >= 1.0) v.phaseR -= 1.0;
                v.phaseSub += stepSub; if (v.phaseSub >= 1.0) v.phaseSub -= 1.0;
                if (v.stage == Voice::kIdle) break;
            }
            v.age += n;
        }
    }

private:
    double rate_ = 48000.0;
    Voice voices_[kVoices];
};

}  // namespace

const cadenza::PluginSpec& cadenza::spec() {
    static const PluginSpec plugin{
        "CadenzaSynth",
        vst3::Iid(0x43616465, 0x6E7A6153, 0x796E7468, 0x00000001),  // "CadenzaSynth" + 1
        "Instrument|Synth",
        true,
        {
            {"Gain", "dB", -30.0, 6.0, 24.0 / 36.0, false},        // default -6 dB
            {"Cutoff", "Hz", 100.0, 16000.0, 0.6, true},           // default ~2.1 kHz
            {"Attack", "s", 0.001, 2.0, 0.2117, true},             // default ~5 ms
            {"Release", "s", 0.01, 4.0, 0.5677, true},             // default ~0.3 s
        },
    };
    return plugin;
}

cadenza::Dsp* cadenza::makeDsp() { return new SynthDsp(); }

CADENZA_VST3_ENTRY_POINTS
