#!/usr/bin/env python3
"""A stand-in for a web browser, for the SDK's `external-browser` sign-in against the emulator:
`BROWSER="python browser.py %s"` makes `webbrowser.open` run it with the authorization URL. It
opens the emulator's sign-in page, approves as `CONFORMANCE_U2M_USER`, and delivers the
redirect to the SDK's loopback listener (retrying until that listener is up). `webbrowser` waits
for a browser command to exit before the SDK starts listening, so the work goes on in a
detached child and the command itself returns at once. Standard library only."""
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def main() -> int:
    url = sys.argv[1]
    if os.environ.get("CONFORMANCE_BROWSER_CHILD") != "1":
        env = dict(os.environ, CONFORMANCE_BROWSER_CHILD="1")
        subprocess.Popen([sys.executable, __file__, url], env=env, start_new_session=True,
                         stdin=subprocess.DEVNULL)
        return 0
    user = os.environ["CONFORMANCE_U2M_USER"]
    page = urllib.request.urlopen(url, timeout=10).read().decode()
    request_id = re.search(r'name="request_id" value="([^"]+)"', page).group(1)
    parts = urllib.parse.urlsplit(url)
    consent = f"{parts.scheme}://{parts.netloc}/oidc/v1/authorize/consent"
    body = urllib.parse.urlencode({"request_id": request_id, "user_name": user, "decision": "approve"})
    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(consent, data=body.encode(), timeout=10)
        raise SystemExit("the consent did not redirect")
    except urllib.error.HTTPError as e:
        if e.code != 302:
            raise
        location = e.headers["Location"]
    for _ in range(100):
        try:
            urllib.request.urlopen(location, timeout=10).read()
            return 0
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    raise SystemExit(f"nobody listened at {location}")


if __name__ == "__main__":
    sys.exit(main())
