{
  "targets": [
    {
      "target_name": "tunnelgate_native",
      "sources": ["helper/native/native.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
