"""Timeline: put a clip on a project's bar in files DAWs read (SMF, BWF, DAWproject, REAPER, Ardour)."""
