"""pvflow for bluesky (integration layer): fly-scan flyers, the fly_scan plan and a document
writer that never holds up the RunEngine.

Integrations build on :class:`pvflow.Context` only; they never touch sockets. Heavy optional
dependencies (ophyd, ophyd-async, tiled) are imported by the modules that need them, so
``import pvflow.bluesky`` stays cheap.

    from pvflow.bluesky.busy_flyer import BusyFlyer
    from pvflow.bluesky.plans import fly_scan
    from pvflow.bluesky.writer import BackgroundWriter
"""
