// CadenzaDrive: a small saturation effect as a VST3 effect, for Cadenza's tests and as a
// demonstration effect. Input gain into tanh soft clipping, a one-pole tone low-pass, an output
// level. Parameters: Drive, Tone, Output.
#include "plugin_base.h"

namespace {

enum { kDrive, kTone, kOutput };

constexpr double kPi = 3.14159265358979323846;

class DriveDsp final : public cadenza::Dsp {
public:
    void prepare(double sampleRate) override { rate_ = sampleRate; }
    void reset() override { state_[0] = state_[1] = 0.0; }
    void process(const float* const* in, float* const* out, int n, const double* params) override {
        double drive = std::pow(10.0, params[kDrive] / 20.0);
        double output = std::pow(10.0, params[kOutput] / 20.0);
        double coefficient = 1.0 - std::exp(-2.0 * kPi * params[kTone] / rate_);
        double makeup = 1.0 / std::tanh(drive);  // a full-scale input stays near full scale
        for (int c = 0; c < 2; ++c) {
            for (int i = 0; i < n; ++i) {
                double x = in ? in[c][i] : 0.0;
                double shaped = std::tanh(drive * x) * makeup;
                state_[c] += coefficient * (shaped - state_[c]);
                out[c][i] = float(output * state_[c]);
            }
        }
    }

private:
    double rate_ = 48000.0;
    double state_[2] = {0.0, 0.0};
};

}  // namespace

const cadenza::PluginSpec& cadenza::spec() {
    static const PluginSpec plugin{
        "CadenzaDrive",
        vst3::Iid(0x43616465, 0x6E7A6144, 0x72697665, 0x00000001),  // "CadenzaDrive" + 1
        "Fx|Distortion",
        false,
        {
            {"Drive", "dB", 0.0, 36.0, 12.0 / 36.0, false},        // default 12 dB
            {"Tone", "Hz", 500.0, 18000.0, 0.7737, true},          // default ~8 kHz
            {"Output", "dB", -24.0, 6.0, 0.6, false},              // default -6 dB
        },
    };
    return plugin;
}

cadenza::Dsp* cadenza::makeDsp() { return new DriveDsp(); }

CADENZA_VST3_ENTRY_POINTS
