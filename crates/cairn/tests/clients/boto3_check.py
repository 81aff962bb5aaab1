#!/usr/bin/env python3
"""boto3 against a Cairn endpoint: put/get/head/list/copy/delete, a managed multipart upload and
download (TransferConfig), byte-exact. usage: boto3_check.py ENDPOINT ACCESS SECRET SOURCE_FILE EXPECTED_CID"""
import os, sys, tempfile
import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

endpoint, access, secret, src, expected_cid = sys.argv[1:6]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access,
                  aws_secret_access_key=secret, region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}))
s3.create_bucket(Bucket="boto")
s3.put_object(Bucket="boto", Key="hello.txt", Body=b"hello world\n", Metadata={"k": "v"})
head = s3.head_object(Bucket="boto", Key="hello.txt")
assert head["Metadata"]["k"] == "v", head
assert head["Metadata"]["cid"] == "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o", head
assert s3.get_object(Bucket="boto", Key="hello.txt")["Body"].read() == b"hello world\n"

data = open(src, "rb").read()
with tempfile.TemporaryDirectory() as tmp:
    dst = os.path.join(tmp, "dst")
    cfg = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    s3.upload_file(src, "boto", "big.bin", Config=cfg)
    s3.download_file("boto", "big.bin", dst, Config=cfg)
    assert open(dst, "rb").read() == data
head = s3.head_object(Bucket="boto", Key="big.bin")
assert head["ETag"].endswith('-3"'), head["ETag"]
assert head["Metadata"]["cid"] == expected_cid, (head["Metadata"], expected_cid)

s3.copy_object(Bucket="boto", Key="copy.bin", CopySource={"Bucket": "boto", "Key": "big.bin"})
keys = [o["Key"] for o in s3.list_objects_v2(Bucket="boto")["Contents"]]
assert keys == ["big.bin", "copy.bin", "hello.txt"], keys
s3.delete_objects(Bucket="boto", Delete={"Objects": [{"Key": k} for k in keys]})
s3.delete_bucket(Bucket="boto")
print("boto3: all checks passed")
