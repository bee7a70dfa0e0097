"""Scale-out: API nodes enqueue visualisations in Redis (through saq) and ``stlens worker``
processes, on as many machines as there are GPUs, run them and stream progress back."""
