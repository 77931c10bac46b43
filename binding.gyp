{
  "targets": [
    {
      "target_name": "tunnelgate_native",
      "sources": ["helper/native/native.c", "helper/native/bpf.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    },
    {
      "target_name": "tunnelgate_sd",
      "sources": ["helper/native/sd.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
