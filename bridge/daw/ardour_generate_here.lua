ardour {
	["type"]    = "EditorAction",
	name        = "Cadenza: generate here",
	license     = "MIT",
	author      = "Cadenza",
	description = [[Asks for a prompt and has Cadenza generate a clip at the playhead's bar, in the session's
tempo, meter and sample rate. Adds one MIDI track per part with the clip's notes in a region at that bar
(the notes are in beats, so they follow the session's tempo map) and one audio track per stem, its
region at the same bar. The clip folder is kept in <session>/cadenza/.
Needs the `cadenza` command (set its path in this action's parameters if Ardour does not see your PATH)
and the DSP script "Cadenza stem player" (cadenza_stem_player.lua) installed beside this one.]]
}

-- Install: copy this file and cadenza_stem_player.lua to ~/.config/ardour7/scripts/, then add this
-- action in Edit > Lua Scripts > Script Manager.

function action_params ()
	return {
		["cadenza"] = { title = "cadenza command (an absolute path if Ardour does not see your PATH)",
		                default = "cadenza" },
		["engine"]  = { title = "engine address (empty: your local engine, started if need be)", default = "" },
	}
end

local function quote (text)
	return "'" .. (tostring (text):gsub ("'", "'\\''")) .. "'"
end

-- Run a shell command; its output (stderr included) and whether it exited 0.
local function run (command)
	local pipe = assert (io.popen (command .. " 2>&1", "r"))
	local out = pipe:read ("a")
	local ok = pipe:close ()
	return out, ok == true
end

local function exists (path)
	return os.rename (path, path) ~= nil
end

-- `cadenza notes` lines -> {parts = {index = {name, program, channel, notes}}, stems = {{name, path}}}
local function parse_notes (text)
	local clip = { parts = {}, order = {}, stems = {} }
	for line in text:gmatch ("[^\n]+") do
		local f = {}
		for field in (line .. "\t"):gmatch ("([^\t]*)\t") do f[#f + 1] = field end
		if f[1] == "clip" then
			clip.bars = tonumber (f[2])
		elseif f[1] == "part" then
			clip.parts[f[2]] = { name = f[5], program = tonumber (f[3]), channel = tonumber (f[4]), notes = {} }
			clip.order[#clip.order + 1] = f[2]
		elseif f[1] == "note" then
			local notes = clip.parts[f[2]].notes
			notes[#notes + 1] = { start = tonumber (f[3]), length = tonumber (f[4]), pitch = tonumber (f[5]),
			                      velocity = tonumber (f[6]), channel = tonumber (f[7]) }
		elseif f[1] == "stem" then
			clip.stems[#clip.stems + 1] = { name = f[2], path = f[3] }
		end
	end
	return clip
end

-- A MIDI track named `name` with one region of `length` samples at `position` holding `notes`.
local function add_midi_part (s, name, position, length, notes)
	local tracks = s:new_midi_track (ARDOUR.ChanCount (ARDOUR.DataType ("midi"), 1),
	                                 ARDOUR.ChanCount (ARDOUR.DataType ("audio"), 2), true,
	                                 ARDOUR.PluginInfo (), nil, nil, 1, name,
	                                 ARDOUR.PresentationInfo.max_order, ARDOUR.TrackMode.Normal, true)
	assert (tracks:size () == 1, "Ardour did not add the MIDI track " .. name)
	local track = tracks:front ():to_track ()
	-- Ardour's Lua cannot make a MIDI source directly: bouncing the new, empty track gives an empty
	-- MIDI region on disk, which the note diff below then fills (as Ardour's own scripts fill regions).
	local region = track:bounce_range (0, length, ARDOUR.InterThreadInfo (), ARDOUR.LuaAPI.nil_proc (), false, name)
	assert (not region:isnil (), "Ardour could not make a MIDI region for " .. name)
	local model = region:to_midiregion ():model ()
	local diff = model:new_note_diff_command ("Cadenza: generate here")
	for _, n in ipairs (notes) do
		diff:add (ARDOUR.LuaAPI.new_noteptr (n.channel, Temporal.Beats.from_double (n.start),
		                                     Temporal.Beats.from_double (n.length), n.pitch, n.velocity))
	end
	model:apply_command (s, diff)
	track:playlist ():add_region (region, Temporal.timepos_t (position), 1, false)
	return track:name ()
end

-- The number of sample frames in a WAV file (read from its fmt and data chunks), or nil.
local function wav_frames (path)
	local file = io.open (path, "rb")
	if not file then return nil end
	local header = file:read (12)
	if not header or header:sub (1, 4) ~= "RIFF" or header:sub (9, 12) ~= "WAVE" then file:close (); return nil end
	local frame_bytes
	while true do
		local chunk = file:read (8)
		if not chunk or #chunk < 8 then file:close (); return nil end
		local id, size = string.unpack ("<c4I4", chunk)
		if id == "fmt " then
			local fmt = file:read (size + size % 2)
			local channels, bits = string.unpack ("<I2", fmt, 3), string.unpack ("<I2", fmt, 15)
			frame_bytes = channels * bits // 8
		elseif id == "data" then
			file:close ()
			return frame_bytes and size // frame_bytes
		else
			file:seek ("cur", size + size % 2)
		end
	end
end

-- An audio track named `name` with one region at `position` holding the stereo WAV at `path`.
-- Ardour 7's Lua cannot make an audio source from a file; a bounce of the new track through the
-- "Cadenza stem player" processor (cadenza_stem_player.lua, which outputs the file) writes the stem
-- into the session's own audio files, and the bounced region is placed at the bar.
local function add_stem (s, name, position, path)
	local frames = wav_frames (path)
	assert (frames and frames > 0, "cannot read the stem " .. path .. " as a WAV file")
	local outputs = 2
	if not s:master_out ():isnil () then outputs = s:master_out ():n_inputs ():n_audio () end
	local tracks = s:new_audio_track (2, outputs, nil, 1, name, ARDOUR.PresentationInfo.max_order,
	                                  ARDOUR.TrackMode.Normal, true)
	assert (tracks:size () == 1, "Ardour did not add the audio track " .. name)
	local route = tracks:front ()
	local player = ARDOUR.LuaAPI.new_luaproc (s, "Cadenza stem player")
	assert (not player:isnil (), "the DSP script \"Cadenza stem player\" is missing: copy cadenza_stem_player.lua "
	        .. "beside this action (~/.config/ardour7/scripts/) and restart Ardour")
	local shm = player:to_plugininsert ():plugin (0):to_luaproc ():shmem ()
	shm:allocate (#path + 2)
	shm:clear ()
	shm:atomic_set_int (0, #path)
	for i = 1, #path do shm:atomic_set_int (i, path:byte (i)) end
	-- last of the track's plugins: after the disk reader (a bounce runs only what follows it); the bounce
	-- ends at the player, so neither the fader nor the panner touch the stem
	assert (route:add_processor_by_index (player, -1, nil, true) == 0, "Ardour did not take the stem player")
	local region = route:to_track ():bounce_range (0, frames, ARDOUR.InterThreadInfo (), player, true, name)
	local loaded = shm:atomic_get_int (#path + 1) == 1
	route:remove_processor (player, nil, true)
	assert (not region:isnil () and loaded, "Ardour could not bounce the stem " .. path)
	route:to_track ():playlist ():add_region (region, Temporal.timepos_t (position), 1, false)
	return route:name ()
end

-- Generate at the playhead's bar and add the clip; returns what was done (a table), or nil and a message.
function cadenza_generate_here (s, prompt, bars, cadenza, engine)
	if s:get_block_size () >= 8192 then  -- the stem player tells a bounce's 8192-sample chunks by their size
		return nil, "Cadenza needs an audio engine buffer below 8192 samples (Window > Audio/MIDI Setup)"
	end
	if ARDOUR.LuaAPI.new_luaproc (s, "Cadenza stem player"):isnil () then
		return nil, "the DSP script \"Cadenza stem player\" is missing: copy cadenza_stem_player.lua beside this "
		            .. "action (~/.config/ardour7/scripts/) and restart Ardour"
	end
	local tm = Temporal.TempoMap.read ()
	local bar = tm:bbt_at (Temporal.timepos_t (s:transport_sample ())).bars
	local function bar_sample (b) return tm:sample_at_beats (tm:quarters_at_bbt (Temporal.BBT_TIME (b, 1, 0))) end
	local position = bar_sample (bar)
	local at = Temporal.timepos_t (position)
	local bpm = tm:quarters_per_minute_at (at)
	local meter = tm:meter_at (at)
	local rate = s:nominal_sample_rate ()

	local base = ARDOUR.LuaAPI.build_filename (s:path (), "cadenza", os.date ("!%Y%m%d-%H%M%S"))
	local folder, n = base, 1
	while exists (folder) do n = n + 1; folder = base .. "-" .. n end

	-- run in the session's folder, so the take is recorded in a Cadenza session named after it
	local command = string.format ("cd %s && %s generate %s --out %s --at %d --tempo %.6f --meter %d/%d --sample-rate %d --quiet",
	                               quote (s:path ()), cadenza, quote (prompt), quote (folder), bar, bpm, meter:divisions_per_bar (),
	                               meter:note_value (), rate)
	if bars then command = command .. " --bars " .. math.floor (bars) end
	if engine and engine ~= "" then command = command .. " --engine " .. quote (engine) end
	local out, ok = run (command)
	if not ok then return nil, "cadenza generate failed:\n" .. out end
	local listing
	listing, ok = run (cadenza .. " notes " .. quote (folder))
	if not ok then return nil, "cadenza notes failed:\n" .. listing end
	local clip = parse_notes (listing)
	if not clip.bars or #clip.order == 0 then return nil, "cadenza wrote no parts into " .. folder end

	local length = bar_sample (bar + clip.bars) - position
	local done = { bar = bar, position = position, folder = folder, tracks = {}, stems = {} }
	for _, index in ipairs (clip.order) do
		local part = clip.parts[index]
		done.tracks[#done.tracks + 1] = add_midi_part (s, "cadenza " .. part.name, position, length, part.notes)
	end
	for _, stem in ipairs (clip.stems) do
		done.stems[#done.stems + 1] = add_stem (s, "cadenza " .. stem.name .. " stem", position, stem.path)
	end
	return done
end

function factory (params) return function ()
	params = params or {}
	local prompt, bars = params["prompt"], tonumber (params["bars"] or "")
	if not prompt or prompt == "" then
		local answer = LuaDialog.Dialog ("Cadenza: generate here", {
			{ type = "entry", key = "prompt", default = "", title = "Prompt" },
			{ type = "number", key = "bars", title = "Bars", min = 1, max = 256, step = 1, digits = 0, default = 8 },
		}):run ()
		if not answer or answer["prompt"] == "" then return end
		prompt, bars = answer["prompt"], answer["bars"]
	end
	local done, problem = cadenza_generate_here (Session, prompt, bars, params["cadenza"] or "cadenza",
	                                             params["engine"])
	if not done then
		if LuaDialog then
			LuaDialog.Message ("Cadenza: generate here", problem, LuaDialog.MessageType.Error,
			                   LuaDialog.ButtonType.Close):run ()
			return
		end
		error (problem)
	end
	print (string.format ("Cadenza: bar %d (sample %d): MIDI tracks %s; audio tracks %s; clip folder %s", done.bar,
	                      done.position, table.concat (done.tracks, ", "), table.concat (done.stems, ", "),
	                      done.folder))
	return done
end end
