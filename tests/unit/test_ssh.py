"""Which host names are this machine, and which reach ssh."""

from __future__ import annotations

import pytest

from one_gluster.core.errors import DriverError
from one_gluster.core.ssh import is_local, run_on


def test_this_machine_by_name_or_loopback_address():
    assert all(is_local(host) for host in ("", "localhost", "127.0.1.1", "::1"))
    assert not is_local("x" * 64)          # a label IDNA cannot encode: not this machine, and no exception


def test_a_host_ssh_would_take_for_an_option_is_refused():
    with pytest.raises(DriverError, match="'-oProxyCommand=true' is not a host name"):
        run_on("-oProxyCommand=true", "true")
