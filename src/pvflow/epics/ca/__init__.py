"""pyepics' low-level ``epics.ca`` functions on pvflow channels (integration layer over
Context).

A ``chid`` here is a :class:`Chid` handle on one name of the session's Context (one per name,
as libca keeps one channel per name and context). The functions keep pyepics' signatures and
return values: ``get`` gives None for a channel that does not connect, ``put`` 1 on success
and -1 when its wait timed out, ``create_subscription`` a ``(callback, user_arg, event_id)``
triple.

Left out, because pvflow has nothing they could act on: the synchronous groups (``sg_*``:
``Context.get_many`` does their job in one round trip), ``libca``/``find_libca`` and the printf
handlers (there is no C library), ``client_status``. Contexts (``create_context``,
``attach_context`` ...) are accepted and do nothing: pvflow's one Context per process is safe
to use from every thread. A read with ``ftype`` asks for the form (native, TIME, CTRL) that
``ftype`` names and, for ``DBR_STRING`` on a non-string channel, the value as text; other
type conversions on the server are not requested.

One module per concern: :mod:`.channels` (the chid table and channel state), :mod:`.reads`,
:mod:`.writes`, :mod:`.subscriptions`; :mod:`pvflow.epics.contexts` holds libca's
housekeeping (polling, contexts, decorators), which has next to nothing to do here.
"""

from __future__ import annotations

from .. import dbr
from ..contexts import (  # noqa: F401  (pyepics' epics.ca names)
    CONTEXT,
    attach_context,
    CAThread,
    context_create,
    context_destroy,
    create_context,
    current_context,
    destroy_context,
    detach_context,
    finalize_libca,
    flush_io,
    initialize_libca,
    message,
    pend_event,
    pend_io,
    poll,
    test_io,
    use_initial_context,
    version,
    withCA,
    withCHID,
    withConnectedCHID,
    withInitialContext,
    withMaybeConnectedCHID,
    withSEVCHK,
    write,
)
from ..exceptions import CASeverityException, ChannelAccessException, ChannelAccessGetFailure
from .channels import (  # noqa: F401
    Chid,
    access,
    clear_cache,
    clear_channel,
    connect_channel,
    create_channel,
    element_count,
    field_type,
    host_name,
    isConnected,
    name,
    promote_type,
    read_access,
    register_clear_cache,
    replace_access_rights_event,
    show_cache,
    state,
    write_access,
)
from .reads import (  # noqa: F401
    get,
    get_complete,
    get_complete_with_metadata,
    get_ctrlvars,
    get_enum_strings,
    get_precision,
    get_severity,
    get_timestamp,
    get_timevars,
    get_with_metadata,
)
from .subscriptions import clear_subscription, create_subscription
from .writes import put

__all__ = [
    "CASeverityException", "CAThread", "ChannelAccessException", "ChannelAccessGetFailure",
    "Chid", "access", "clear_cache", "clear_channel", "clear_subscription", "connect_channel",
    "create_channel", "create_subscription", "element_count", "field_type", "get",
    "get_complete", "get_ctrlvars", "get_timevars", "host_name", "isConnected", "name",
    "pend_event", "pend_io", "poll", "promote_type", "put", "read_access", "state",
    "write_access",
]

# Settings scripts may change at run time; the modules look them up here on every use.
HAS_NUMPY = True
PREEMPTIVE_CALLBACK = True
AUTO_CLEANUP = True
WITH_CA_MESSAGES = False
AUTOMONITOR_MAXLENGTH = 65536
DEFAULT_CONNECTION_TIMEOUT = 2.0
DEFAULT_SUBSCRIPTION_MASK = dbr.DBE_VALUE | dbr.DBE_ALARM

promote_fieldtype = dbr.promote_fieldtype
