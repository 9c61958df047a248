"""Verify webhook deliveries with the Standard Webhooks reference library.

Usage: python verify_webhooks.py SECRET < deliveries.jsonl

Each input line is a JSON object {"headers": {...}, "body": "..."}: one
request as the receiver got it. Prints each verified payload's type; exits 1
at the first delivery whose signature does not verify.
"""

import json
import sys

from standardwebhooks.webhooks import Webhook


def main() -> int:
    webhook = Webhook(sys.argv[1])
    for line in sys.stdin:
        if not line.strip():
            continue
        delivery = json.loads(line)
        try:
            payload = webhook.verify(delivery["body"], delivery["headers"])
        except Exception as err:  # noqa: BLE001 - any failure is a refusal
            print(f"refused: {err}")
            return 1
        print(f"verified {payload['type']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
