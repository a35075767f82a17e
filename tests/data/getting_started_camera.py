# file: camera.py
# The basecam getting-started example, verbatim apart from the import line.

import lib

from camera_core import BaseCamera, CameraEvent, CameraSystem


class MyCameraSystem(CameraSystem):
    __version__ = "0.0.1"

    def list_available_cameras(self):
        return lib.cameras


class MyCamera(BaseCamera):
    async def _connect_internal(self, uid):

        self.device = lib.open(uid)

    async def _expose_internal(self, exposure):

        exptime = exposure.exptime

        self._notify(CameraEvent.EXPOSURE_INTEGRATING)
        await self.loop.run_in_executor(None, self.device.expose, exptime)

        self._notify(CameraEvent.EXPOSURE_READING)
        array = await self.loop.run_in_executor(None, self.device.read_frame)

        exposure.data = array
        return
