"""`make serve`'s env file: sourced in a fresh shell, the README's S3 inbox, EventBridge and
notify_url examples reach the running stack under the names the README uses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from reelhook_local.serve import local_env, write_env_file
from reelhook_local.stack import LocalStack, StackOptions

ROOT = Path(__file__).resolve().parents[2]

# What the README's shell lines do (aws s3 cp, aws events put-rule, aws secretsmanager
# get-secret-value), in boto3, which reads the same variables as the aws CLI.
README_STEPS = r'''
import json, os, time, boto3
s3 = boto3.client("s3")
manifest = {"model": "freepik/veo-3-1-reference-to-video", "prompt": "walk",
            "reference_images": ["https://example.com/character.png"], "client_reference": "order-1234"}
s3.put_object(Bucket=os.environ["BUCKET"], Key="inbox/orders/order-1234.json", Body=json.dumps(manifest).encode())
status = None
for _ in range(240):
    try:
        status = json.loads(s3.get_object(Bucket=os.environ["BUCKET"],
                                          Key="outbox/orders/order-1234.json.status.json")["Body"].read())
        if status.get("status") == "succeeded":
            break
    except s3.exceptions.NoSuchKey:
        pass
    time.sleep(0.25)
events = boto3.client("events")
events.put_rule(Name="video-done", EventBusName=os.environ["BUS"],
                EventPattern=json.dumps({"source": ["reelhook"], "detail-type": ["Video Job Succeeded"]}))
key = json.loads(boto3.client("secretsmanager").get_secret_value(
    SecretId=os.environ["NOTIFY_SECRET_ARN"])["SecretString"])["signing_key"]
print(json.dumps({"status": status and status.get("status"), "api": os.environ["REELHOOK_API_URL"],
                  "signing_key": bool(key)}))
'''


def test_the_env_file_makes_the_readme_examples_run(tmp_path):
    assert ".reelhook/local.env" in (ROOT / "README.md").read_text()
    with LocalStack(StackOptions(enforce_iam=True)) as stack:
        env_file = tmp_path / "local.env"
        write_env_file(env_file, local_env(stack, enforce_iam=True))
        # A fresh shell: nothing of this process's environment but PATH.
        answer = subprocess.run(  # noqa: S603 - our own file and interpreter
            ["bash", "-c", f'source "{env_file}" && exec "{sys.executable}" -'], input=README_STEPS,  # noqa: S607
            env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=120,
        )
        assert answer.returncode == 0, answer.stderr
        result = json.loads(answer.stdout.strip().splitlines()[-1])
    assert result == {"status": "succeeded", "api": stack.api_url, "signing_key": True}
