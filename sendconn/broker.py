"""The embedded mode's Celery broker: kombu's filesystem transport, with messages that appear whole.

kombu (5.x) writes a message file in place while a consumer listing the folder may already move it away and read
it empty; the worker then dies of a JSONDecodeError. Here the file is written under a name no consumer takes and
renamed into place (atomic on one filesystem), so a consumer sees all of it or nothing.
"""

import os
import time
import uuid

from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):  # type: ignore[override]  # kombu's base calls it message
        name = f"{int(round(time.monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = f"{final}.partial"  # not "<queue>.msg": consumers skip it
        try:
            with open(partial, "wb", buffering=0) as file:
                file.write(str_to_bytes(dumps(payload)))
            os.rename(partial, final)
        except OSError as error:
            raise filesystem.ChannelError(f"Cannot add file {final!r} to directory") from error


class FilesystemTransport(filesystem.Transport):
    Channel = Channel
