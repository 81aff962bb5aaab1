#!/usr/bin/env node
// verify-car.mjs CAR_FILE ROOT_CID EXPECTED_SHA256 [PATH]
//
// An independent reader for Cairn's gateway CARs, built only from the JavaScript IPFS stack:
// parses the CAR with @ipld/car, checks that the header names ROOT_CID and that every block
// hashes to its CID, puts the blocks into a memory blockstore, re-assembles the UnixFS file at
// ROOT_CID[/PATH] with ipfs-unixfs-exporter and compares its sha256 with EXPECTED_SHA256.
// Prints one JSON line; exits 0 when everything holds, 1 when something does not, 2 on usage.

import './node20-compat.mjs'
import crypto from 'node:crypto'
import fs from 'node:fs'
import { CarReader } from '@ipld/car/reader'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { exporter } from 'ipfs-unixfs-exporter'
import { CID } from 'multiformats/cid'
import { equals } from 'multiformats/bytes'
import { identity } from 'multiformats/hashes/identity'
import { sha256, sha512 } from 'multiformats/hashes/sha2'

const hashers = new Map([sha256, sha512, identity].map((h) => [h.code, h]))

function fail (message) {
  console.log(JSON.stringify({ ok: false, error: message }))
  process.exit(1)
}

const [carPath, rootArg, expected, path] = process.argv.slice(2)
if (!carPath || !rootArg || !/^[0-9a-f]{64}$/.test(expected ?? '')) {
  console.error('usage: verify-car.mjs CAR_FILE ROOT_CID EXPECTED_SHA256 [PATH]')
  process.exit(2)
}

try {
  const root = CID.parse(rootArg)
  const reader = await CarReader.fromBytes(fs.readFileSync(carPath))
  const roots = await reader.getRoots()
  if (roots.length !== 1 || !roots[0].equals(root)) {
    fail(`header roots ${roots.map(String)} are not [${root}]`)
  }
  const store = new MemoryBlockstore()
  let blocks = 0
  for await (const { cid, bytes } of reader.blocks()) {
    const hasher = hashers.get(cid.multihash.code)
    if (!hasher) fail(`block ${cid}: unknown hash function ${cid.multihash.code}`)
    const digest = await hasher.digest(bytes)
    if (!equals(digest.bytes, cid.multihash.bytes)) fail(`block ${cid} does not match its hash`)
    await store.put(cid, bytes)
    blocks++
  }
  const entry = await exporter(path ? `${root}/${path}` : root, store)
  if (entry.type !== 'file' && entry.type !== 'raw') fail(`${entry.cid} is a ${entry.type}, not a file`)
  const hash = crypto.createHash('sha256')
  let size = 0
  for await (const chunk of entry.content()) {
    hash.update(chunk)
    size += chunk.length
  }
  const sha = hash.digest('hex')
  if (sha !== expected) fail(`re-assembled ${size} bytes with sha256 ${sha}, expected ${expected}`)
  console.log(JSON.stringify({ ok: true, root: String(root), file: String(entry.cid), blocks, size, sha256: sha }))
} catch (e) {
  fail(String(e?.stack ?? e))
}
