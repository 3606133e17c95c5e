"""Child process: build or load a SummaryIndex whose docstore and index store are
botwire (``BotWireKVStore`` under ``KVDocumentStore`` / ``KVIndexStore``).

usage: li_proc_index.py NAMESPACE (build|load)
Prints one JSON line.
"""

from __future__ import annotations

import json
import sys

from llama_index.core import Document, StorageContext, SummaryIndex, load_index_from_storage
from llama_index.core.storage.docstore.keyval_docstore import KVDocumentStore
from llama_index.core.storage.index_store.keyval_index_store import KVIndexStore

from botwire_llamaindex import BotWireKVStore


def storage(namespace: str) -> StorageContext:
    kv = BotWireKVStore(namespace)
    return StorageContext.from_defaults(
        docstore=KVDocumentStore(kv, namespace="docs"), index_store=KVIndexStore(kv)
    )


def main() -> None:
    namespace, step = sys.argv[1:3]
    if step == "build":
        docs = [
            Document(text="Botwire keeps agent memory.", doc_id="d1", metadata={"n": 1}),
            Document(text="Serverless functions forget.", doc_id="d2", metadata={"n": 2}),
        ]
        index = SummaryIndex.from_documents(docs, storage_context=storage(namespace))
        index.set_index_id("summary")
        print(json.dumps({"index_id": index.index_id}))
        return
    index = load_index_from_storage(storage(namespace), index_id="summary")
    nodes = index.as_retriever().retrieve("anything")
    ref_docs = sorted(index.docstore.get_all_ref_doc_info() or {})
    print(json.dumps({"texts": sorted(n.node.get_content() for n in nodes), "ref_docs": ref_docs}))


if __name__ == "__main__":
    main()
