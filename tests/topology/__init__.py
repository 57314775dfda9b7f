"""The topology test: two `rca serve`, two `rca worker`, PostgreSQL and a Chroma server on
loopback, with faults (a worker killed mid-draft, the Chroma server restarted, every database
connection cut). Helpers live beside the test: `processes.py` starts the workers and the fake
model, `client.py` calls the servers and keeps what they answered."""
