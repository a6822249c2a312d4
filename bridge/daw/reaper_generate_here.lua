-- @description Cadenza: generate here
-- @about
--   Asks for a prompt and has Cadenza generate a clip at the bar of the play position (the edit
--   cursor when stopped), in the project's tempo, time signature and sample rate. Adds one MIDI
--   track per part with the clip's notes in an item at that bar, and the stems as audio tracks at
--   the same bar. The clip folder is kept in <project folder>/cadenza/.
--
--   UNTESTED AGAINST REAPER: REAPER could not be installed where this was written. Only the parts
--   it shares with the Ardour action (the `cadenza generate` call and the `cadenza notes` lines) are
--   tested; the REAPER API calls below are written from REAPER's API documentation.
--
--   Install: Actions > Show action list > New action > Load ReaScript..., pick this file.
--   Set CADENZA below to an absolute path if REAPER does not see your PATH.

local CADENZA = "cadenza"
local ENGINE = ""  -- empty: your local engine (started if need be); else an engine address
local TITLE = "Cadenza: generate here"

local function quote(text)
  if reaper.GetOS():match("^Win") then return '"' .. (tostring(text):gsub('"', '\\"')) .. '"' end
  return "'" .. (tostring(text):gsub("'", "'\\''")) .. "'"
end

local function run(command)
  local pipe = io.popen(command .. " 2>&1", "r")
  if not pipe then return "could not run: " .. command, false end
  local out = pipe:read("a")
  local ok = pipe:close()
  return out, ok == true
end

local function exists(path)
  return os.rename(path, path) ~= nil
end

-- `cadenza notes` lines -> {bars, parts = {key = {name, notes}}, order, stems = {{name, path}}}
local function parse_notes(text)
  local clip = { parts = {}, order = {}, stems = {} }
  for line in text:gmatch("[^\n]+") do
    local f = {}
    for field in (line .. "\t"):gmatch("([^\t]*)\t") do f[#f + 1] = field end
    if f[1] == "clip" then
      clip.bars = tonumber(f[2])
    elseif f[1] == "part" then
      clip.parts[f[2]] = { name = f[5], notes = {} }
      clip.order[#clip.order + 1] = f[2]
    elseif f[1] == "note" then
      local notes = clip.parts[f[2]].notes
      notes[#notes + 1] = { start = tonumber(f[3]), length = tonumber(f[4]), pitch = tonumber(f[5]),
                            velocity = tonumber(f[6]), channel = tonumber(f[7]) }
    elseif f[1] == "stem" then
      clip.stems[#clip.stems + 1] = { name = f[2], path = f[3] }
    end
  end
  return clip
end

local function new_track(name)
  local index = reaper.CountTracks(0)
  reaper.InsertTrackAtIndex(index, true)
  local track = reaper.GetTrack(0, index)
  reaper.GetSetMediaTrackInfo_String(track, "P_NAME", name, true)
  return track
end

local function main()
  local ok, answer = reaper.GetUserInputs(TITLE, 2, "Prompt,Bars,extrawidth=300", ",8")
  if not ok then return end
  local prompt, bars = answer:match("^(.*),([^,]*)$")
  bars = tonumber(bars)
  if not prompt or prompt == "" then return end

  local playing = reaper.GetPlayState() & 1 == 1
  local here = playing and reaper.GetPlayPosition() or reaper.GetCursorPosition()
  local _, measure = reaper.TimeMap2_timeToBeats(0, here)  -- 0-based measure of the play position
  local bar = measure + 1
  local bar_time = reaper.TimeMap2_beatsToTime(0, 0, measure)
  local bar_qn = reaper.TimeMap2_timeToQN(0, bar_time)
  local numerator, denominator, bpm = reaper.TimeMap_GetTimeSigAtTime(0, bar_time)
  local rate = tonumber(reaper.GetSetProjectInfo(0, "PROJECT_SRATE", 0, false))
  if not rate or rate <= 0 then rate = 48000 end

  local project = reaper.GetProjectPath("")
  local base = project .. "/cadenza/" .. os.date("!%Y%m%d-%H%M%S")
  local folder, n = base, 1
  while exists(folder) do n = n + 1; folder = base .. "-" .. n end

  -- run in the project's folder, so the take is recorded in a Cadenza session named after it
  local cd = reaper.GetOS():match("^Win") and "cd /d" or "cd"
  local command = string.format("%s %s && %s generate %s --out %s --at %d --tempo %.6f --meter %d/%d --sample-rate %d --quiet",
                                cd, quote(project), CADENZA, quote(prompt), quote(folder), bar, bpm, numerator, denominator, rate)
  if bars then command = command .. " --bars " .. math.floor(bars) end
  if ENGINE ~= "" then command = command .. " --engine " .. quote(ENGINE) end
  local out, done = run(command)
  if not done then reaper.ShowMessageBox("cadenza generate failed:\n" .. out, TITLE, 0) return end
  local listing
  listing, done = run(CADENZA .. " notes " .. quote(folder))
  if not done then reaper.ShowMessageBox("cadenza notes failed:\n" .. listing, TITLE, 0) return end
  local clip = parse_notes(listing)
  if not clip.bars or #clip.order == 0 then reaper.ShowMessageBox("no parts in " .. folder, TITLE, 0) return end

  local end_time = reaper.TimeMap2_beatsToTime(0, 0, measure + clip.bars)
  reaper.Undo_BeginBlock()
  reaper.PreventUIRefresh(1)
  for _, key in ipairs(clip.order) do
    local part = clip.parts[key]
    local track = new_track("cadenza " .. part.name .. " (MIDI)")
    local item = reaper.CreateNewMIDIItemInProj(track, bar_time, end_time, false)
    local take = reaper.GetActiveTake(item)
    for _, note in ipairs(part.notes) do
      -- notes are in quarter notes from the clip's downbeat: they follow the project's tempo map
      local first = reaper.MIDI_GetPPQPosFromProjQN(take, bar_qn + note.start)
      local last = reaper.MIDI_GetPPQPosFromProjQN(take, bar_qn + note.start + note.length)
      reaper.MIDI_InsertNote(take, false, false, first, last, note.channel, note.pitch, note.velocity, true)
    end
    reaper.MIDI_Sort(take)
  end
  -- stems: InsertMedia puts a file on a new track at the edit cursor
  local cursor = reaper.GetCursorPosition()
  for _, stem in ipairs(clip.stems) do
    reaper.SetEditCurPos(bar_time, false, false)
    reaper.InsertMedia(stem.path, 1)
    local track = reaper.GetTrack(0, reaper.CountTracks(0) - 1)
    reaper.GetSetMediaTrackInfo_String(track, "P_NAME", "cadenza " .. stem.name, true)
  end
  reaper.SetEditCurPos(cursor, false, false)
  reaper.PreventUIRefresh(-1)
  reaper.Undo_EndBlock(TITLE, -1)
  reaper.UpdateArrange()
end

main()
