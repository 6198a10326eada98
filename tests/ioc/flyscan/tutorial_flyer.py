"""The final ``MyFlyer`` of the busy-record fly-scan tutorial, unchanged, run as a CA client.

Run as a script by ``test_tutorial_flyer.py`` (a separate process, so pyepics' CA context gets
this test's EPICS ports). Between the two ``----`` markers is the tutorial's code, character for
character: imports, PV names, ``BusyRecord``, ``BusyStatus``, ``MyWaveform``, the final
``MyFlyer`` (plain ophyd with its default control layer, pyepics), ``ifly = MyFlyer("prj:",
name="ifly")``, the connection check of cell 21 and ``RE(bluesky.plans.fly([ifly]))``. The one
added line is ``RE.subscribe(...)``, which prints every document the RunEngine emits as one JSON
line for the test to check.
"""

import json
import sys


def _print_document(name, document):
    print("DOCUMENT " + json.dumps([name, document], default=repr), flush=True)


# ---- tutorial code begins ----------------------------------------------------------------
import enum
import logging
import threading
import time

import ophyd
import bluesky
import bluesky.plans

RE = bluesky.RunEngine({})
logger = logging.getLogger()

BUSY_PV = 'prj:mybusy'
TIME_WAVE_PV = 'prj:t_array'
X_WAVE_PV = 'prj:x_array'
Y_WAVE_PV = 'prj:y_array'


class BusyRecord(ophyd.Device):
    """a busy record sets the fly scan into action"""
    state = ophyd.Component(ophyd.EpicsSignal, "", string=True)
    output_link = ophyd.Component(ophyd.EpicsSignal, ".OUT")
    forward_link = ophyd.Component(ophyd.EpicsSignal, ".FLNK")


class BusyStatus(str, enum.Enum):
    busy = "Busy"
    done = "Done"


class MyWaveform(ophyd.Device):
    """waveform records store fly scan data"""
    wave = ophyd.Component(ophyd.EpicsSignalRO, "")
    number_elements = ophyd.Component(ophyd.EpicsSignalRO, ".NELM")
    number_read = ophyd.Component(ophyd.EpicsSignalRO, ".NORD")


class MyFlyer(ophyd.Device):
    """
    a basic Flyer for scans triggered by the synApps busy record
    """

    busy = ophyd.Component(BusyRecord, BUSY_PV)
    tArr = ophyd.Component(MyWaveform, TIME_WAVE_PV)
    xArr = ophyd.Component(MyWaveform, X_WAVE_PV)
    yArr = ophyd.Component(MyWaveform, Y_WAVE_PV)

    def __init__(self, *args, **kwargs):
        super().__init__('', parent=None, **kwargs)
        self._completion_status = None
        self.poll_sleep_interval_s = 0.05
        self.t0 = 0

    def wait_busy(self, target = None):
        """
        wait for the busy record to return to the target value
        """
        logger.debug("wait_busy()")
        target = target or BusyStatus.done

        while self.busy.state.value not in (target):
            time.sleep(self.poll_sleep_interval_s)  # wait to complete ...
 
    def my_activity(self):
        """
        start the "fly scan" here, could wait for completion
        
        It's OK to use blocking calls here 
        since this is called in a separate thread
        from the BlueSky RunEngine.
        """
        logger.info("activity()")
        if self._completion_status is None:
            logger.info("leaving activity() - not complete")
            return
        
        # do the activity here
        self.busy.state.put(BusyStatus.done) # make sure it's Done first
        self.wait_busy()

        # wait for completion
        self.t0 = time.time()
        self.busy.state.put(BusyStatus.busy)
        self.wait_busy()
        
        self._completion_status._finished(success=True)
        logger.info("activity() complete. status = " + str(self._completion_status))

    def kickoff(self):
        """
        Start this Flyer
        """
        logger.info("kickoff()")
        self._completion_status = ophyd.DeviceStatus(self)
        
        thread = threading.Thread(target=self.my_activity, daemon=True)
        thread.start()

        return self._completion_status

    def complete(self):
        """
        Wait for flying to be complete
        """
        logger.info("complete()")
        if self._completion_status is None:
            raise RuntimeError("No collection in progress")

        st = ophyd.DeviceStatus(self)
        st._finished(success=True)
        return st

    def describe_collect(self):
        """
        Describe details for ``collect()`` method
        """
        logger.info("describe_collect()")
        return {
            self.name: dict(
                ifly_xArr = dict(
                    source = self.xArr.wave.pvname,
                    dtype = "number",
                    shape = (1,)
                ),
                ifly_yArr = dict(
                    source = self.yArr.wave.pvname,
                    dtype = "number",
                    shape = (1,)
                ),
                ifly_tArr = dict(
                    source = self.tArr.wave.pvname,
                    dtype = "number",
                    shape = (1,)
                )
            )
        }

    def collect(self):
        """
        Start this Flyer
        """
        logger.info("collect()")
        for i in range(len(ifly.tArr.wave.value)):
            t = ifly.tArr.wave.value[i]
            x = ifly.xArr.wave.value[i]
            y = ifly.yArr.wave.value[i]
            d = dict(
                time=time.time(),
                data=dict(
                    ifly_tArr = time.time() - self.t0,
                    ifly_xArr = x,
                    ifly_yArr = y,
                ),
                timestamps=dict(
                    ifly_tArr = t,
                    ifly_xArr = t,
                    ifly_yArr = t,
                )
            )
            yield d


ifly = MyFlyer("prj:", name="ifly")
print(ifly.busy.state.pvname, ifly.busy.state.value)
RE.subscribe(_print_document)
RE(bluesky.plans.fly([ifly]))
# ---- tutorial code ends ------------------------------------------------------------------

sys.exit(0)
