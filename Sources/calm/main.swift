print("calm: not built yet")
