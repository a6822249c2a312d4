import subprocess


def test_jack_server_fixture_lists_system_ports(jack_server):
    ports = subprocess.run(["jack_lsp", "-s", jack_server], capture_output=True, text=True, check=True).stdout
    assert "system:playback_1" in ports
