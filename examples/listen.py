"""Listen to a meeting: save its audio stream as a WAV file until the stream ends.

    python examples/listen.py ws://127.0.0.1:8080/ws/audio/1234567890 out.wav
    python examples/listen.py \
        "ws://127.0.0.1:8080/ws/audio/1234567890?type=one_way&user_id=16778240" a.wav

Only the first stream seen (mixed, unless filtered) goes into the file; Ctrl-C stops.
"""

from __future__ import annotations

import json
import struct
import sys
import wave

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect


def main(url: str, path: str) -> None:
    chosen = None
    with connect(url, compression=None) as ws, wave.open(path, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(32000)
        try:
            for message in ws:
                if isinstance(message, str):
                    print(json.loads(message), file=sys.stderr)
                    continue
                audio_type, user_id = struct.unpack_from("<QQ", message)
                if chosen is None:
                    chosen = (audio_type, user_id)
                if (audio_type, user_id) == chosen:
                    out.writeframes(message[16:])
        except (ConnectionClosed, KeyboardInterrupt):
            pass
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
