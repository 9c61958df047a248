"""Run the scim2-tester conformance suite against a Rollcall server.

Usage: python conformance.py BASE_URL TOKEN

Prints every check with its status; exits 1 if any check errs.
"""

import sys

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server


def main() -> int:
    base, token = sys.argv[1], sys.argv[2]
    http = Client(base_url=base, headers={"Authorization": f"Bearer {token}"})
    scim = SyncSCIMClient(http)
    scim.discover()
    results = check_server(scim, raise_exceptions=False)
    failed = 0
    for result in results:
        status = result.status.name
        print(f"{status:8} {result.title}: {result.reason or ''}".rstrip())
        if result.status == Status.ERROR:
            failed += 1
    print(f"{len(results)} checks, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
