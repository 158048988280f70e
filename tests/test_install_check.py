"""The import-time check that exactly one MXNet build is installed (cpu/gpu extras must not collide)."""
import subprocess
import sys

import pytest

from gluon_bof._mxnet_check import check_mxnet_install, mxnet_distributions


class _Dist:
    def __init__(self, name):
        self.metadata = {"Name": name}


def test_single_cpu_build_is_accepted():
    assert check_mxnet_install([_Dist("mxnet"), _Dist("numpy")]) == "mxnet"


def test_single_gpu_build_is_accepted():
    assert check_mxnet_install([_Dist("mxnet-cu112"), _Dist("gluoncv")]) == "mxnet-cu112"


def test_cpu_and_gpu_builds_side_by_side_are_refused_with_the_fix():
    with pytest.raises(ImportError) as err:
        check_mxnet_install([_Dist("mxnet"), _Dist("mxnet_cu112")])
    message = str(err.value)
    assert "mxnet, mxnet-cu112" in message
    assert "pip uninstall -y mxnet mxnet-cu112" in message
    assert 'gluon-bof[cpu]' in message and 'gluon-bof[gpu]' in message


def test_missing_mxnet_is_refused_with_the_install_command():
    with pytest.raises(ImportError, match=r"no MXNet build is installed.*gluon-bof\[cpu\]"):
        check_mxnet_install([_Dist("numpy")])


def test_unrelated_mxnet_named_tools_are_not_counted():
    assert mxnet_distributions([_Dist("mxnet-coreml-converter"), _Dist("mxnet")]) == ["mxnet"]


def test_this_environment_has_exactly_the_cpu_build():
    assert mxnet_distributions() == ["mxnet"]


def test_import_runs_the_check():
    code = "import gluon_bof, mxnet, numpy; print(gluon_bof.__version__, mxnet.__version__, numpy.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    version, mx_version, np_version = out.split()
    assert mx_version == "1.9.1"
    assert tuple(int(p) for p in np_version.split(".")[:2]) < (1, 24)
