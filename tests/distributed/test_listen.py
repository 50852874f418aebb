"""Issue 16.12: trust boundaries — the cluster services warn in one line before listening on a public address."""
import pytest

from keras_resnets.training.listen import is_public_address, split_host_port, warn_if_public


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "10.0.0.1", "192.168.1.5", "172.16.0.2", "::1",
                                  "fe80::1", "fd00::2"])
def test_loopback_and_private_addresses_are_not_public(host):
    assert not is_public_address(host)


@pytest.mark.parametrize("host", ["8.8.8.8", "0.0.0.0", "::", "2001:4860::8888"])
def test_public_and_every_interface_addresses_are_public(host):
    assert is_public_address(host)


def test_split_host_port_handles_ipv6():
    assert split_host_port("[::1]:1234") == ("::1", "1234")
    assert split_host_port("10.0.0.1:80") == ("10.0.0.1", "80")


def test_warning_is_one_line_naming_the_address(capsys):
    assert warn_if_public("0.0.0.0:8000", "the KerasTuner oracle (gRPC)")
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "0.0.0.0:8000" in err and "unauthenticated" in err
    assert not warn_if_public("127.0.0.1:8000", "the KerasTuner oracle (gRPC)")
    assert capsys.readouterr().err == ""


def test_tuner_chief_warns_before_listening_on_a_public_address(tmp_path, monkeypatch, capsys):
    """The chief of a distributed search warns; 8.8.8.8 is no address of this machine, so the bind then fails."""
    from keras_resnets.tuning import tune

    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "8.8.8.8")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8000")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")
    with pytest.raises(RuntimeError, match="8.8.8.8:8000"):
        tune("cifar_resnet20", "digits", runs_dir=str(tmp_path), run_name="t", max_trials=1, max_epochs=1)
    assert "the KerasTuner oracle (gRPC) listens on 8.8.8.8:8000" in capsys.readouterr().err
