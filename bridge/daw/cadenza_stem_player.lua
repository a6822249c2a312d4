ardour {
	["type"]    = "dsp",
	name        = "Cadenza stem player",
	category    = "Utility",
	license     = "MIT",
	author      = "Cadenza",
	description = [[Plays one stereo audio file into a track bounce. Used only by the action "Cadenza: generate
here" to bring a clip's stems into the session; it is removed again right after the bounce.]]
}

-- Install: copy this file next to ardour_generate_here.lua (~/.config/ardour7/scripts/).
--
-- Why it exists: Ardour 7's Lua has no call that makes an audio source from a file (no SourceFactory,
-- no import; Editor:do_import exists only in the GUI). A track bounce (Track:bounce_range) does make
-- one, from whatever the track's processors output. This processor outputs the stem: it builds
-- Ardour's own convolver with the stem as its impulse response and feeds it a single unit impulse
-- at the first sample of the bounce, so the convolution is the stem itself (float rounding aside).
-- The file is read by Ardour (ARDOUR.DSP.Convolver), not by Lua: a DSP script's Lua has a 3 MiB heap.
--
-- The file's path comes through the processor's shared memory (self:shmem ()): slot 0 its length n in
-- bytes, slots 1..n its bytes; slot n + 1 is set to 1 once the stem is loaded, so the action can tell
-- a bounce of the stem from one of silence. A bounce runs in chunks of 8192 samples (Session::bounce_chunk_size),
-- with the engine's own processing blocked; the first 8192-sample call is the bounce's first chunk
-- (the action refuses engines whose block is 8192 or more). Before it the output is silence.

function dsp_ioconfig () return { { audio_in = 2, audio_out = 2 } } end

local BOUNCE_CHUNK = 8192
local convolver

function dsp_run (ins, outs, n_samples)
	local first = false
	if convolver == nil and n_samples == BOUNCE_CHUNK then
		local shm = self:shmem ()
		local chars = {}
		local n = shm:atomic_get_int (0)
		for i = 1, n do chars[i] = string.char (shm:atomic_get_int (i)) end
		convolver = ARDOUR.DSP.Convolver (Session, table.concat (chars), ARDOUR.DSP.IRChannelConfig.Stereo,
		                                  ARDOUR.DSP.IRSettings ())
		collectgarbage ()
		shm:atomic_set_int (n + 1, 1)
		first = true
	end
	for c = 1, #outs do
		local out = outs[c]:array ()
		for i = 1, n_samples do out[i] = 0 end
		if first then out[1] = 1 end
	end
	if convolver ~= nil then convolver:run_stereo_no_latency (outs[1], outs[2], n_samples) end
end
