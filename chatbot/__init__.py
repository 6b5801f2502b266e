"""kgchat's user-facing side: the command line now; retrieval, generation and the server later."""
