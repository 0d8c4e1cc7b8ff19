"""The images a tree's build uses (kube-cross, pause, base images): resolution, pull, mirror and retag."""
